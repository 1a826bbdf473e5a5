package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// procSample is what the bench reads of the server process at one moment.
type procSample struct {
	Ticks  int64 // utime+stime, in clock ticks (all threads)
	RSSKiB int64 // VmRSS
	HWMKiB int64 // VmHWM: the process's peak RSS since it started
}

// defaultClkTck is USER_HZ on every mainstream Linux architecture.
const defaultClkTck = 100

// clockTicks returns CLK_TCK as getconf(1) says; when getconf is missing
// or says something odd it assumes 100 (USER_HZ on x86 and arm). A run
// asks once, after its measured window.
func clockTicks() int64 {
	out, err := exec.Command("getconf", "CLK_TCK").Output()
	if err != nil {
		return defaultClkTck
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil && n > 0 && n <= 100000 {
		return n
	}
	return defaultClkTck
}

// ticksToMs converts clock ticks to milliseconds.
func ticksToMs(ticks int64) float64 {
	return float64(ticks) * 1000 / float64(clockTicks())
}

// parseStat returns utime+stime (fields 14 and 15 of proc(5)'s
// /proc/PID/stat, in clock ticks). The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so the fields
// are counted from the last ')'.
func parseStat(b []byte) (int64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want ≥ 13", len(f))
	}
	utime, err := strconv.ParseInt(f[14-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseInt(f[15-3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return utime + stime, nil
}

// parseStatus returns VmRSS and VmHWM in KiB from /proc/PID/status. A
// kernel thread or a zombie has neither; that is an error.
func parseStatus(r io.Reader) (rss, hwm int64, err error) {
	var haveRSS, haveHWM bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			return 0, 0, fmt.Errorf("status: empty %s", k)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("status: %s: %w", k, err)
		}
		if len(f) > 1 && !strings.EqualFold(f[1], "kB") {
			return 0, 0, fmt.Errorf("status: %s: unit %q, want kB", k, f[1])
		}
		if k == "VmRSS" {
			rss, haveRSS = n, true
		} else {
			hwm, haveHWM = n, true
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if !haveRSS || !haveHWM {
		return 0, 0, errors.New("status: no VmRSS/VmHWM (kernel thread or zombie?)")
	}
	return rss, hwm, nil
}

const procDir = "/proc"

// readProc samples the process pid.
func readProc(pid int) (procSample, error) {
	b, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", procDir, pid))
	if err != nil {
		return procSample{}, err
	}
	ticks, err := parseStat(b)
	if err != nil {
		return procSample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	f, err := os.Open(fmt.Sprintf("%s/%d/status", procDir, pid))
	if err != nil {
		return procSample{}, err
	}
	defer f.Close()
	rss, hwm, err := parseStatus(f)
	if err != nil {
		return procSample{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return procSample{Ticks: ticks, RSSKiB: rss, HWMKiB: hwm}, nil
}

// readRSS is the cheap sample taken every 100 ms: VmRSS only.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("%s/%d/status", procDir, pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	rss, _, err := parseStatus(f)
	return rss, err
}

// matchTicks returns utime+stime per pid of every process whose command
// line (/proc/PID/cmdline, arguments joined by spaces) contains match.
// Processes that vanish while being read are skipped.
func matchTicks(match string) (map[int]int64, error) {
	dirs, err := filepath.Glob(procDir + "/[0-9]*")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	out := map[int]int64{}
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == self {
			continue
		}
		cmd, err := os.ReadFile(d + "/cmdline")
		if err != nil || !strings.Contains(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})), match) {
			continue
		}
		b, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue // gone
		}
		ticks, err := parseStat(b)
		if err != nil {
			return nil, fmt.Errorf("pid %d: %w", pid, err)
		}
		out[pid] = ticks
	}
	return out, nil
}

// ticksDelta is the CPU the processes of after spent since before (all of
// it for a process that started in between).
func ticksDelta(before, after map[int]int64) int64 {
	var d int64
	for pid, t := range after {
		if t0, ok := before[pid]; ok && t0 <= t {
			d += t - t0
		} else if !ok {
			d += t
		}
	}
	return d
}
