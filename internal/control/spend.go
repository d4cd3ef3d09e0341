package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Spend counts the create-order sends of one UTC day, and of each of its hours. It is stored
// under one key per day (spend.YYYYMMDD), so that a reservation counts against the hour and
// the day in a single compare-and-set.
type Spend struct {
	Day   string  `json:"day"` // YYYYMMDD, UTC
	Total int     `json:"total"`
	Hours [24]int `json:"hours"`
	rev   uint64  // revision the value was read at; 0: the key does not exist
}

// Hour returns the count of the UTC hour of t (which must fall on s's day).
func (s Spend) Hour(t time.Time) int { return s.Hours[t.UTC().Hour()] }

func spendDay(t time.Time) string { return t.UTC().Format("20060102") }

func spendKey(day string) string { return spendKeyPrefix + day }

// SpendAt returns the counts of t's UTC day (zero when nothing was counted).
func (c *Control) SpendAt(ctx context.Context, t time.Time) (Spend, error) {
	return c.readSpend(ctx, spendDay(t))
}

func (c *Control) readSpend(ctx context.Context, day string) (Spend, error) {
	e, err := c.kv.Get(ctx, spendKey(day))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Spend{Day: day}, nil
	}
	if err != nil {
		return Spend{}, fmt.Errorf("control: read spend %s: %w", day, err)
	}
	var s Spend
	if err := json.Unmarshal(e.Value(), &s); err != nil {
		return Spend{}, fmt.Errorf("control: decode spend %s: %w", day, err)
	}
	s.Day, s.rev = day, e.Revision()
	return s, nil
}

// errSpendRace is a lost compare-and-set on a spend key.
var errSpendRace = errors.New("spend counter changed concurrently")

// addSpend writes s with one more send in t's hour, if s is still the stored value (by
// revision), and returns the stored result. A lost race returns errSpendRace.
func (c *Control) addSpend(ctx context.Context, s Spend, t time.Time) (Spend, error) {
	next := s
	next.Total++
	next.Hours[t.UTC().Hour()]++
	b, err := json.Marshal(next)
	if err != nil {
		return Spend{}, err
	}
	var rev uint64
	if s.rev == 0 {
		rev, err = c.kv.Create(ctx, spendKey(s.Day), b)
	} else {
		rev, err = c.kv.Update(ctx, spendKey(s.Day), b, s.rev)
	}
	if isRevisionMismatch(err) {
		return Spend{}, errSpendRace
	}
	if err != nil {
		return Spend{}, fmt.Errorf("control: count spend %s: %w", s.Day, err)
	}
	next.rev = rev
	if s.rev == 0 {
		c.purgeOldSpend(ctx, s.Day)
	}
	return next, nil
}

// spendKeep is how many days of spend counters are kept (for `fulfil status` and humans).
const spendKeep = 7

// purgeOldSpend removes the counters of days more than spendKeep days before day; it runs
// when a day's counter is created, so about once a day. Failures are harmless.
func (c *Control) purgeOldSpend(ctx context.Context, day string) {
	t, err := time.Parse("20060102", day)
	if err != nil {
		return
	}
	oldest := spendDay(t.AddDate(0, 0, -spendKeep))
	// The lister's subscription lives until its context ends, not only until Stop.
	lctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lister, err := c.kv.ListKeysFiltered(lctx, spendKeyPrefix+"*")
	if err != nil {
		return
	}
	var old []string
	for k := range lister.Keys() {
		if d := strings.TrimPrefix(k, spendKeyPrefix); d < oldest {
			old = append(old, k)
		}
	}
	_ = lister.Stop()
	for _, k := range old {
		_ = c.kv.Purge(ctx, k)
	}
}
