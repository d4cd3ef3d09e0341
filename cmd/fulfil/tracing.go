package main

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/fulfil/fulfil/internal/tracing"
	"github.com/fulfil/fulfil/partnerclient"
)

// tracingProblems checks the OTEL_* settings with the command's others, before anything starts.
func tracingProblems() []error {
	_, problems := tracing.FromEnv()
	return problems
}

// startTracing starts tracing as the OTEL_* settings ask; off (the default), its TracerProvider
// is nil. stop flushes the spans still buffered: call it once everything traced has ended.
func startTracing(ctx context.Context, log *zap.Logger) (t *tracing.Tracing, stop func(), err error) {
	s, problems := tracing.FromEnv()
	if len(problems) > 0 {
		return nil, nil, errors.Join(problems...)
	}
	t, err = tracing.Start(ctx, s, tracing.Options{Logger: log.Named("tracing"), ServiceVersion: partnerclient.Version})
	if err != nil {
		return nil, nil, err
	}
	if t.Enabled() {
		log.Info("tracing on", zap.Strings("exporters", s.Exporters), zap.String("otlp_protocol", s.Protocol))
	}
	return t, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(sctx); err != nil {
			log.Warn("tracing: buffered spans not flushed", zap.Error(err))
		}
	}, nil
}
