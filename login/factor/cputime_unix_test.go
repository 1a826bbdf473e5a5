//go:build unix

package factor

import (
	"syscall"
	"time"
)

// processCPU is the CPU time the process has used (user + system, all
// threads, the garbage collector's included). On a shared machine it is
// steadier than wall time: time the core spends on other processes is not
// counted.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
