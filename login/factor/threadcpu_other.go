//go:build !linux

package factor

import "time"

// threadCPU is not measured here: Observe is never called.
func threadCPU() (time.Duration, bool) { return 0, false }
