package bench

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"time"
)

// resetPeakRSS resets the kernel's peak resident set (VmHWM) of this process, so that peakRSS
// reports the peak since now. It reports whether it could (Linux only).
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// usage is CPU time and resident set (bytes) of the measured processes.
type usage struct {
	cpu       time.Duration
	rss, peak uint64 // current (VmRSS) and peak (VmHWM) resident set
}

// rss returns the current (VmRSS) and peak (VmHWM) resident set in bytes, from
// /proc/self/status; elsewhere the peak is ru_maxrss and the current value 0.
func rss() (cur, peak uint64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, maxRSS()
	}
	cur, peak = parseStatus(b)
	if peak == 0 {
		peak = maxRSS()
	}
	return cur, peak
}

// parseStatus reads VmRSS and VmHWM from a /proc/<pid>/status file.
func parseStatus(b []byte) (cur, peak uint64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		switch {
		case bytes.HasPrefix(line, []byte("VmRSS:")):
			cur = kB(line[len("VmRSS:"):])
		case bytes.HasPrefix(line, []byte("VmHWM:")):
			peak = kB(line[len("VmHWM:"):])
		}
	}
	return cur, peak
}

// kB parses "   123456 kB" into bytes.
func kB(b []byte) uint64 {
	f := bytes.Fields(b)
	if len(f) == 0 {
		return 0
	}
	n, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0
	}
	return n * 1024
}
