package bench

import (
	"runtime/metrics"
	"time"
)

// schedMetric is the runtime's histogram of the time goroutines spent runnable before they
// ran: how long work waited for a core.
const schedMetric = "/sched/latencies:seconds"

// schedHist is a snapshot of the scheduling-latency histogram of this process.
type schedHist struct {
	counts  []uint64
	buckets []float64 // boundaries in seconds, len(counts)+1
}

func readSched() schedHist {
	s := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		return schedHist{}
	}
	h := s[0].Value.Float64Histogram()
	return schedHist{counts: append([]uint64(nil), h.Counts...), buckets: h.Buckets}
}

// schedLatency returns the percentiles of the scheduling latencies recorded between before and
// after (each bucket's upper bound; zero when none were recorded or the runtime has no such
// metric).
func schedLatency(before, after schedHist) Percentiles {
	if len(after.counts) == 0 || len(before.counts) != len(after.counts) {
		return Percentiles{}
	}
	diff := make([]uint64, len(after.counts))
	var total uint64
	for i := range diff {
		diff[i] = after.counts[i] - before.counts[i]
		total += diff[i]
	}
	if total == 0 {
		return Percentiles{}
	}
	at := func(p float64) time.Duration {
		want := uint64(p*float64(total) + 0.5)
		want = max(want, 1)
		var seen uint64
		for i, c := range diff {
			seen += c
			if seen >= want {
				return bucketBound(after.buckets, i)
			}
		}
		return bucketBound(after.buckets, len(diff)-1)
	}
	return Percentiles{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: at(1)}
}

// bucketBound is the upper bound of bucket i, or its lower bound for the last, unbounded one.
func bucketBound(b []float64, i int) time.Duration {
	v := b[i+1]
	if v > 1e9 { // +Inf
		v = b[i]
	}
	return time.Duration(v * float64(time.Second))
}
