package webhook

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/fulfil/fulfil/messages"
)

// Service delivers the events of the events stream to every endpoint.
type Service struct {
	cfg     Config
	js      jetstream.JetStream
	runners []*runner
}

// New returns a Service; call Setup, then Run.
func New(js jetstream.JetStream, cfg Config) (*Service, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, errors.New("webhook: jetstream is required")
	}
	return &Service{cfg: cfg, js: js}, nil
}

// Setup creates or updates the dead-letter stream and every endpoint's two consumers (events,
// replays). The events stream must exist.
func (s *Service) Setup(ctx context.Context) error {
	if _, err := s.js.CreateOrUpdateStream(ctx, DeadLetterStreamConfig(s.cfg)); err != nil {
		return fmt.Errorf("stream %s: %w", StreamDeadLetter, err)
	}
	s.runners = nil
	for _, e := range s.cfg.Endpoints {
		for _, c := range []struct {
			stream string
			cc     jetstream.ConsumerConfig
			replay bool
		}{
			{messages.StreamEvents, ConsumerConfig(s.cfg, e), false},
			{StreamDeadLetter, ReplayConsumerConfig(s.cfg, e), true},
		} {
			cons, err := s.js.CreateOrUpdateConsumer(ctx, c.stream, c.cc)
			if err != nil {
				return fmt.Errorf("webhook consumer %s (endpoint %s) on %s: %w", c.cc.Durable, e.Host, c.stream, err)
			}
			s.runners = append(s.runners, newRunner(s.cfg, s.js, e, c.stream, c.cc.Durable, cons, c.replay))
		}
		s.cfg.Logger.Info("webhook endpoint", zap.String("endpoint", e.Host), zap.String("consumer", e.ConsumerName()),
			zap.Bool("progress", s.cfg.Progress), zap.Duration("retry_period", s.cfg.RetryPeriod))
	}
	return nil
}

// Run delivers until ctx ends, then hands the events it holds back to their consumers, in
// order, and returns.
func (s *Service) Run(ctx context.Context) error {
	if s.runners == nil {
		return errors.New("webhook: Run before Setup")
	}
	var wg sync.WaitGroup
	for _, r := range s.runners {
		wg.Add(1)
		go func() { defer wg.Done(); r.run(ctx) }()
	}
	wg.Wait()
	s.cfg.Client.CloseIdleConnections()
	return nil
}
