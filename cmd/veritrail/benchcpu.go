package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// cpuClock is the CPU time (user + system) a process has used so far. On a
// shared machine a rate swings with what else runs, but the CPU spent per
// event does not, so bench reports both: the server's and its own (the
// load generator shares the cores).
type cpuClock func() (time.Duration, bool)

// selfCPU is this process's CPU time, from getrusage.
func selfCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// procCPU is process pid's CPU time, from /proc/PID/stat (Linux; elsewhere
// it reports none). utime and stime are in clock ticks, 100 a second on
// Linux.
func procCPU(pid int) cpuClock {
	return func() (time.Duration, bool) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, false
		}
		// The command name, in parentheses, may hold spaces: count fields
		// after its closing one. utime and stime are fields 14 and 15.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			return 0, false
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 13 {
			return 0, false
		}
		ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
		st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
		if err1 != nil || err2 != nil {
			return 0, false
		}
		return time.Duration(ut+st) * (time.Second / 100), true
	}
}

// cpuSpan is the CPU a process used between start and stop.
type cpuSpan struct {
	clock       cpuClock
	start, used time.Duration
	ok          bool
}

func (c *cpuSpan) begin() { c.start, c.ok = c.clock() }

func (c *cpuSpan) end() {
	if !c.ok {
		return
	}
	t, ok := c.clock()
	c.used, c.ok = t-c.start, ok
}

// perEvent is the span's CPU per event and as a share of one core over
// elapsed.
func (c *cpuSpan) perEvent(events int64, elapsed time.Duration) string {
	if !c.ok || events <= 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.1f µs/event (%.2f cores)", float64(c.used.Microseconds())/float64(events), c.used.Seconds()/elapsed.Seconds())
}
