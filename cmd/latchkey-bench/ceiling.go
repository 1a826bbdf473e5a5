package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/latchkey/latchkey/login/factor"
)

const ceilingUsage = `Usage: latchkey-bench ceiling [--checks N] [--json]

The argon2id ceiling of the sign-in scenario: N password checks, one after
another, through the hasher "latchkey serve" uses (login/factor's
PasswordHasher, the default parameters m=19456 KiB t=2 p=1, its memory
reused), and the CPU time they took (this process's, the garbage
collector's included). A sign-in checks one password, so 1 / (CPU per
check) is the most sign-ins one core could do. Pin it to the server's core
(taskset -c 1), in the same run as the sign-in scenario, and compare
"sign-ins per server core" with "checks per CPU-second".

`

// ceilingResult is what ceiling measured (--json).
type ceilingResult struct {
	Checks           int     `json:"checks"`
	MemoryKiB        uint32  `json:"memory_kib"`
	Time             uint32  `json:"time"`
	Threads          uint8   `json:"threads"`
	CPUMs            float64 `json:"cpu_ms"`
	CPUMsPerCheck    float64 `json:"cpu_ms_per_check"`
	ChecksPerCPUSec  float64 `json:"checks_per_cpu_second"`
	WallMsPerCheck   float64 `json:"wall_ms_per_check"`
	ChecksPerWallSec float64 `json:"checks_per_second"`
}

func cmdCeiling(env *cmdEnv, args []string) error {
	fs := flag.NewFlagSet("ceiling", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	fs.Usage = func() {
		fmt.Fprint(env.stderr, ceilingUsage)
		fs.PrintDefaults()
	}
	checks := fs.Int("checks", 60, "password checks to time (one untimed check first)")
	asJSON := fs.Bool("json", false, "machine-readable output")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageErr("ceiling: %v", err)
	}
	if fs.NArg() > 0 {
		return usageErr("ceiling: unexpected argument %q", fs.Arg(0))
	}
	if *checks <= 0 {
		return usageErr("ceiling: --checks must be positive")
	}
	p := factor.DefaultPasswordParams
	h := &factor.PasswordHasher{Params: p, Slots: 1}
	phc, err := h.Hash("Bench-password-123") // also maps the memory the checks reuse
	if err != nil {
		return err
	}
	cpu0, err := processCPU()
	if err != nil {
		return err
	}
	wall0 := time.Now()
	for range *checks {
		if ok, _, err := h.Verify(phc, "Bench-password-123"); !ok || err != nil {
			return fmt.Errorf("ceiling: the check failed: %v", err)
		}
	}
	wall := time.Since(wall0)
	cpu1, err := processCPU()
	if err != nil {
		return err
	}
	cpu := cpu1 - cpu0
	r := ceilingResult{Checks: *checks, MemoryKiB: p.Memory, Time: p.Time, Threads: p.Threads,
		CPUMs: ms(cpu), CPUMsPerCheck: ms(cpu) / float64(*checks), WallMsPerCheck: ms(wall) / float64(*checks)}
	if cpu > 0 {
		r.ChecksPerCPUSec = float64(*checks) / cpu.Seconds()
	}
	if wall > 0 {
		r.ChecksPerWallSec = float64(*checks) / wall.Seconds()
	}
	if *asJSON {
		return json.NewEncoder(env.stdout).Encode(r)
	}
	fmt.Fprintf(env.stdout, "argon2id m=%d KiB t=%d p=%d: %d checks, %.0f ms CPU, %.2f ms CPU per check → %.1f checks per CPU-second (wall %.2f ms per check)\n",
		r.MemoryKiB, r.Time, r.Threads, r.Checks, r.CPUMs, r.CPUMsPerCheck, r.ChecksPerCPUSec, r.WallMsPerCheck)
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
