package factor

import (
	"bufio"
	"crypto/subtle"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/argon2"
)

// Benchmarks of the password check at DefaultPasswordParams. The machine
// they run on is shared: compare figures from one run, pinned to one core
// (taskset -c 1), and prefer the paired benchmarks, which alternate the two
// implementations within each iteration so that both see the same noise.
//
//	taskset -c 1 go test -run x -bench 'Argon|Password' -benchmem -count 5 ./login/factor/

const benchPassword = "correct horse battery staple"

// legacyVerify is the password check as it was before argon2id.go:
// x/crypto/argon2.IDKey, with a fresh block array per call.
func legacyVerify(phc, password string) bool {
	stored, salt, key, err := parsePHC(phc)
	if err != nil {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, stored.Time, stored.Memory, stored.Threads, stored.KeyLen)
	return subtle.ConstantTimeCompare(got, key) == 1
}

// BenchmarkPasswordHasherVerify: Verify through a hasher with one slot, the
// way serve checks passwords (memory reused from the second run on).
func BenchmarkPasswordHasherVerify(b *testing.B) {
	h := &PasswordHasher{Params: DefaultPasswordParams, Slots: 1}
	phc, err := h.Hash(benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, _ := h.Verify(phc, benchPassword); !ok {
			b.Fatal("no match")
		}
	}
}

// BenchmarkPasswordLegacyVerify: the check before, for the B/op and
// allocs/op beside BenchmarkPasswordHasherVerify.
func BenchmarkPasswordLegacyVerify(b *testing.B) {
	phc, err := HashPassword(benchPassword, DefaultPasswordParams)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !legacyVerify(phc, benchPassword) {
			b.Fatal("no match")
		}
	}
}

// BenchmarkPasswordPaired runs, in turns within each iteration, the legacy
// check (x/crypto, fresh memory), a hasher's Verify (own argon2id, reused
// memory) and VerifyPassword (own argon2id, fresh memory), and reports each
// one's mean process CPU time (the GC's included) and its ratio to the
// legacy check's.
func BenchmarkPasswordPaired(b *testing.B) {
	h := &PasswordHasher{Params: DefaultPasswordParams, Slots: 1}
	phc, err := h.Hash(benchPassword)
	if err != nil {
		b.Fatal(err)
	}
	must := func(ok bool) {
		if !ok {
			b.Fatal("no match")
		}
	}
	pairedCPU(b, []namedFunc{
		{"xcrypto", func() { must(legacyVerify(phc, benchPassword)) }},
		{"hasher", func() { ok, _, _ := h.Verify(phc, benchPassword); must(ok) }},
		{"fresh", func() { ok, _, _ := VerifyPassword(phc, benchPassword, DefaultPasswordParams); must(ok) }},
	})
}

// BenchmarkPasswordConcurrent: 50 goroutines check passwords through one
// hasher with one slot (serve's setting on one CPU), b.N checks in all. It
// reports checks per second and the peak RSS of the process during the run
// (VmHWM, reset before the run through /proc/self/clear_refs), under Go's
// default GC settings and under serve's (GOGC 100, a 48 MiB soft limit). The
// "xcrypto" variants bound the legacy check with the same one slot.
func BenchmarkPasswordConcurrent(b *testing.B) {
	phc, err := HashPassword(benchPassword, DefaultPasswordParams)
	if err != nil {
		b.Fatal(err)
	}
	// Each variant builds its checker inside its run, so that none holds
	// memory during another's.
	impls := []struct {
		name     string
		newCheck func() func() bool
	}{
		{"own", func() func() bool {
			h := &PasswordHasher{Params: DefaultPasswordParams, Slots: 1}
			return func() bool { ok, _, _ := h.Verify(phc, benchPassword); return ok }
		}},
		{"xcrypto", func() func() bool {
			slot := make(chan struct{}, 1)
			return func() bool {
				slot <- struct{}{}
				defer func() { <-slot }()
				return legacyVerify(phc, benchPassword)
			}
		}},
	}
	gcs := []struct {
		name    string
		percent int
		limit   int64
	}{
		{"gcdefault", 100, -1},
		{"gcserve", 100, 48 << 20},
	}
	for _, gc := range gcs {
		for _, impl := range impls {
			b.Run(impl.name+"/"+gc.name, func(b *testing.B) {
				oldPercent := debug.SetGCPercent(gc.percent)
				oldLimit := debug.SetMemoryLimit(gc.limit)
				defer debug.SetGCPercent(oldPercent)
				defer debug.SetMemoryLimit(oldLimit)
				// Start from what this variant needs: what earlier variants
				// left resident is returned, and the peak is reset.
				debug.FreeOSMemory()
				canReset := resetPeakRSS()
				base, _ := procStatusKiB("VmRSS")
				check := impl.newCheck()
				var left atomic.Int64
				left.Store(int64(b.N))
				var failed atomic.Bool
				var wg sync.WaitGroup
				b.ResetTimer()
				cpu0 := processCPU()
				for range 50 {
					wg.Go(func() {
						for left.Add(-1) >= 0 {
							if !check() {
								failed.Store(true)
							}
						}
					})
				}
				wg.Wait()
				b.StopTimer()
				cpu := processCPU() - cpu0
				if failed.Load() {
					b.Fatal("a check failed")
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
				b.ReportMetric(float64(b.N)/cpu.Seconds(), "checks/cpu-s")
				if hwm, ok := procStatusKiB("VmHWM"); ok && canReset {
					b.ReportMetric(float64(hwm)/1024, "peakRSS-MiB")
					b.ReportMetric(float64(base)/1024, "startRSS-MiB")
				}
			})
		}
	}
}

// resetPeakRSS resets VmHWM to the current RSS (Linux: "5" to clear_refs).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// procStatusKiB reads one "Name:   123 kB" line of /proc/self/status.
func procStatusKiB(name string) (int64, bool) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), name+":")
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n, err == nil
	}
	return 0, false
}
