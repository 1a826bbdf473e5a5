package bench

import (
	"flag"
	"os"
	"testing"
)

// TestManualPeer measures a running provider; it is skipped unless
// LATCHKEY_BENCH_PEER names the issuer. With arguments after "--" it runs
// exactly those (as "latchkey-bench bench" would); without, it runs discovery,
// jwks, client-credentials (scope api) and refresh against the nodeop peer
// (client bench, the refresh token in LATCHKEY_BENCH_RT_FILE, default
// /tmp/rt.txt) at concurrency 50, sampling LATCHKEY_BENCH_PID if set:
//
//	go test -c -o /tmp/bench.test ./cmd/latchkey-bench/internal/bench
//	LATCHKEY_BENCH_PEER=http://127.0.0.1:3000 LATCHKEY_BENCH_PID=$(pgrep -n node) \
//	  taskset -c 0 /tmp/bench.test -test.run TestManualPeer -test.v
//	LATCHKEY_BENCH_PEER=1 taskset -c 0 /tmp/bench.test -test.run TestManualPeer -test.v -- \
//	  --issuer http://127.0.0.1:8080 --scenario signin …
func TestManualPeer(t *testing.T) {
	issuer := os.Getenv("LATCHKEY_BENCH_PEER")
	if issuer == "" {
		t.Skip("set LATCHKEY_BENCH_PEER=http://127.0.0.1:3000 to measure a running provider")
	}
	if args := flag.Args(); len(args) > 0 {
		if err := Main(t.Context(), args, os.Stdout, os.Stderr); err != nil {
			t.Fatal(err)
		}
		return
	}
	rt := os.Getenv("LATCHKEY_BENCH_RT_FILE")
	if rt == "" {
		rt = "/tmp/rt.txt"
	}
	common := []string{"--issuer", issuer, "--client-id", "bench", "--client-secret", "benchsecret-benchsecret-benchsecret",
		"--concurrency", "50"}
	if pid := os.Getenv("LATCHKEY_BENCH_PID"); pid != "" {
		common = append(common, "--pid", pid)
	}
	for _, extra := range [][]string{
		{"--scenario", "discovery"},
		{"--scenario", "jwks"},
		{"--scenario", "client-credentials", "--scope", "api"},
		{"--scenario", "refresh", "--refresh-token-file", rt},
	} {
		args := append(append([]string{}, common...), extra...)
		if os.Getenv("LATCHKEY_BENCH_JSON") != "" {
			args = append(args, "--json")
		}
		if err := Main(t.Context(), args, os.Stdout, os.Stderr); err != nil {
			t.Errorf("%v: %v", extra, err)
		}
		os.Stdout.WriteString("\n")
	}
}
