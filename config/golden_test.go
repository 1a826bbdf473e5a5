package config

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite config/testdata golden files (review the diff)")

// readEnv reads the optional NAME.env next to a case: one NAME=value a
// line, taken literally.
func readEnv(t *testing.T, yamlPath string) []string {
	t.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(yamlPath, ".yaml") + ".env")
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		if line != "" {
			env = append(env, line)
		}
	}
	return env
}

// golden compares got with the file, or rewrites the file under -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go test ./config -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run: go test ./config -update, then review the diff)\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

// TestGolden loads each testdata/ok case and compares the effective
// configuration, redacted, with its .golden file; each testdata/bad case
// must fail with exactly the lines of its .err file.
func TestGolden(t *testing.T) {
	oks, _ := filepath.Glob("testdata/ok/*.yaml")
	bads, _ := filepath.Glob("testdata/bad/*.yaml")
	if len(oks) == 0 || len(bads) == 0 {
		t.Fatal("no testdata")
	}
	for _, path := range oks {
		t.Run("ok/"+filepath.Base(path), func(t *testing.T) {
			c, _, err := Load(path, readEnv(t, path))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			out, err := c.Redacted()
			if err != nil {
				t.Fatal(err)
			}
			goldenPath := strings.TrimSuffix(path, ".yaml") + ".golden"
			golden(t, goldenPath, out)
			// The printed configuration is itself a valid file with the
			// same meaning (unless secrets had to be hidden).
			if bytes.Contains(out, []byte(redacted)) {
				return
			}
			again, _, err := Load(goldenPath, nil)
			if err != nil {
				t.Fatalf("reloading the printed config: %v", err)
			}
			if out2, _ := again.Redacted(); !bytes.Equal(out, out2) {
				t.Errorf("printed config does not round-trip:\n%s", out2)
			}
		})
	}
	for _, path := range bads {
		t.Run("bad/"+filepath.Base(path), func(t *testing.T) {
			c, _, err := Load(path, readEnv(t, path))
			if err == nil {
				t.Fatalf("Load succeeded: %+v", c)
			}
			if c != nil {
				t.Error("a config was returned with an error")
			}
			golden(t, strings.TrimSuffix(path, ".yaml")+".err", []byte(err.Error()+"\n"))
		})
	}
}
