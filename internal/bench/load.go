package bench

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Load is one point of a load curve: an absolute rate, or a fraction of a measured capacity.
type Load struct {
	// Rate is in purchases per second (0 when Fraction is set).
	Rate float64
	// Fraction of the capacity, e.g. 0.5 for "50%".
	Fraction float64
}

// RateFor returns the rate of l for a measured capacity (purchases per second).
func (l Load) RateFor(capacity float64) float64 {
	if l.Fraction > 0 {
		return l.Fraction * capacity
	}
	return l.Rate
}

// String returns l as ParseLoads reads it.
func (l Load) String() string {
	if l.Fraction > 0 {
		return strconv.FormatFloat(l.Fraction*100, 'f', -1, 64) + "%"
	}
	return strconv.FormatFloat(l.Rate, 'f', -1, 64)
}

// ParseLoads parses a comma-separated list of loads: "200" is 200 purchases per second, "50%"
// half the capacity. An empty string is no loads. It returns an error naming each entry that
// is not a positive number or percentage.
func ParseLoads(s string) ([]Load, error) {
	var loads []Load
	var errs []error
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		pct, isPct := strings.CutSuffix(f, "%")
		v, err := strconv.ParseFloat(pct, 64)
		if err != nil || !(v > 0) || v > 1e9 {
			errs = append(errs, fmt.Errorf("load %q: want a positive rate per second or a percentage", f))
			continue
		}
		if isPct {
			loads = append(loads, Load{Fraction: v / 100})
		} else {
			loads = append(loads, Load{Rate: v})
		}
	}
	return loads, errors.Join(errs...)
}
