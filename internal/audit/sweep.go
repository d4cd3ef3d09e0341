package audit

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/fulfil/fulfil/idempotency"
	"github.com/fulfil/fulfil/internal/control"
	"github.com/fulfil/fulfil/internal/metrics"
)

// DefaultWindow is how far back an audit looks by default.
const DefaultWindow = 72 * time.Hour

// Sweeper runs the audit periodically inside the workers: one sweep per Interval across all of
// them (claimed in the control bucket), whose summary every worker's metrics then show.
type Sweeper struct {
	Control  *control.Control
	Store    *idempotency.Store
	Partner  Partner
	Interval time.Duration
	// Window is how far back each sweep looks (default DefaultWindow).
	Window time.Duration
	// Owner names this worker in the claim.
	Owner string
	// Options bound each sweep (Since and Now are set per sweep).
	Options Options
	Logger  *zap.Logger
	Metrics *metrics.Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time

	shown time.Time // the summary time the metrics show
}

// Run sweeps until ctx ends. Every check (each minute, or each Interval when shorter) it
// claims the sweep if none ran within Interval, and sets the metrics from the last summary.
func (s *Sweeper) Run(ctx context.Context) {
	if s.Interval <= 0 {
		return
	}
	t := time.NewTicker(min(s.Interval, time.Minute))
	defer t.Stop()
	for {
		s.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sweeper) log() *zap.Logger {
	if s.Logger == nil {
		return zap.NewNop()
	}
	return s.Logger
}

func (s *Sweeper) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.now()
}

func (s *Sweeper) check(ctx context.Context) {
	ok, err := s.Control.ClaimSweep(ctx, s.Owner, s.Interval)
	if err != nil {
		if ctx.Err() == nil {
			s.log().Warn("audit: claiming the sweep failed", zap.Error(err))
		}
		return
	}
	if ok {
		s.Sweep(ctx)
	}
	if sum, found, err := s.Control.LastAudit(ctx); err == nil && found && sum.At.After(s.shown) {
		s.shown = sum.At
		if sum.Error == "" {
			s.Metrics.AuditFindings(KindNames(), sum.Counts, sum.At)
		}
	}
}

// Sweep runs one audit now, logs each finding, stores the summary and returns the report.
func (s *Sweeper) Sweep(ctx context.Context) (Report, error) {
	window := s.Window
	if window <= 0 {
		window = DefaultWindow
	}
	now := s.now()
	opt := s.Options
	opt.Since, opt.Now = now.Add(-window), now
	var rep Report
	recs, err := s.Store.List(ctx)
	if err == nil {
		rep, err = Run(ctx, s.Partner, recs, opt)
	}
	sum := control.AuditSummary{At: s.now().UTC(), By: s.Owner, Since: opt.Since.UTC(), Complete: rep.Complete,
		Orders: rep.Orders, Sagas: rep.Sagas, Counts: rep.Counts()}
	if err != nil {
		sum.Error = err.Error()
		s.Metrics.AuditSwept("error")
		s.log().Warn("audit sweep failed; the next interval tries again", zap.Error(err))
	} else {
		s.Metrics.AuditSwept("ok")
		s.Metrics.AuditFindings(KindNames(), sum.Counts, sum.At)
		s.shown = sum.At
		for _, f := range rep.Findings {
			log := s.log().Warn
			if f.Kind == Orphan || f.Kind == Duplicate {
				log = s.log().Error // money spent for nothing
			}
			log("audit finding", zap.String("kind", string(f.Kind)), zap.String("idempotency_key", f.Key),
				zap.String("po_number", f.PONumber), zap.String("orders", orderNos(f.Orders)),
				zap.String("saga_status", f.SagaStatus), zap.String("saga_order_no", f.SagaOrderNo), zap.String("detail", f.Detail))
		}
		s.log().Info("audit sweep done", zap.Int("orders", rep.Orders), zap.Int("sagas", rep.Sagas),
			zap.Bool("complete", rep.Complete), zap.Int("findings", len(rep.Findings)))
	}
	if serr := s.Control.SaveAuditSummary(ctx, sum); serr != nil && ctx.Err() == nil {
		s.log().Warn("audit: storing the summary failed", zap.Error(serr))
	}
	return rep, err
}
