//go:build unix

package op

import (
	"syscall"
	"testing"
	"time"
)

// processCPU is the CPU time the test process has used (user + system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU adds cpu-ns/op to a benchmark: the process's CPU time per
// operation, which, unlike ns/op, does not grow when other work shares
// the core (this machine is shared).
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(processCPU()-start)/float64(b.N), "cpu-ns/op")
}
