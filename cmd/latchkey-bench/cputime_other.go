//go:build !unix

package main

import (
	"errors"
	"time"
)

// processCPU is not measured here: ceiling needs getrusage(2).
func processCPU() (time.Duration, error) {
	return 0, errors.New("ceiling: process CPU time is only read on Unix")
}
