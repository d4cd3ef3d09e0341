package bench

import (
	"slices"
	"time"
)

// Percentiles summarise a latency distribution (nearest rank).
type Percentiles struct {
	P50, P90, P99, Max time.Duration
}

// percentiles returns the percentiles of d, which it sorts; zero for an empty d.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	slices.Sort(d)
	return Percentiles{P50: rank(d, 50), P90: rank(d, 90), P99: rank(d, 99), Max: d[len(d)-1]}
}

// rank is the nearest-rank p-th percentile of the sorted, non-empty d.
func rank(d []time.Duration, p int) time.Duration {
	i := (p*len(d)+99)/100 - 1
	return d[max(0, i)]
}
