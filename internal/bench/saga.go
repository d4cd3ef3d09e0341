package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/worker"
	"github.com/fulfil/fulfil/workflow"
)

// runSaga measures fulfil: Config.Workers worker.Worker pools on one saga and one partner
// client, as `fulfil worker` wires them.
func (st *stack) runSaga(ctx context.Context) (Phase, error) {
	cfg := st.cfg
	if cfg.WorkerExe != "" {
		return st.runSagaProcs(ctx)
	}
	saga := &workflow.Saga{Partner: st.client, Logger: cfg.Logger.Named("saga"),
		Hooks: workflow.Hooks{StepDone: st.metrics.StepDone, Reconciled: st.metrics.Reconciled}, TracerProvider: cfg.TracerProvider}
	runCtx, stop := context.WithCancel(ctx)
	var conns []*nats.Conn
	errc := make(chan error, cfg.Workers)
	running := 0
	defer func() {
		stop()
		for range running {
			<-errc
		}
		for _, nc := range conns {
			nc.Close()
		}
	}()
	for i := range cfg.Workers {
		nc, err := st.connect(fmt.Sprintf("worker-%d", i))
		if err != nil {
			return Phase{}, err
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			return Phase{}, err
		}
		w, err := worker.New(js, saga, worker.Config{
			Concurrency:   cfg.Concurrency,
			MaxAckPending: max(16384, cfg.Workers*cfg.Concurrency),
			WorkerID:      fmt.Sprintf("bench-%d", i),
			Replicas:      st.replicas(),
			Logger:        cfg.Logger,
			Metrics:       st.metrics,
		})
		if err != nil {
			return Phase{}, err
		}
		if err := w.Setup(ctx); err != nil {
			return Phase{}, fmt.Errorf("bench: worker setup: %w", err)
		}
		running++
		go func() { errc <- w.Run(runCtx) }()
	}
	t := sagaTarget()
	t.msgs, t.inFlight = connMsgs(conns), st.metrics.InFlightNow
	return st.measure(ctx, t)
}

// sagaTarget is fulfil as the load generator sees it: the default subjects and streams.
func sagaTarget() target {
	subjects := messages.SubjectsFor("")
	return target{
		name:      "saga",
		requested: subjects.Requested,
		stream:    messages.StreamEvents,
		completed: subjects.Completed,
		failed:    subjects.Failed,
	}
}

// workerConnName is the NATS connection name of a `fulfil worker` process.
const workerConnName = "fulfil"

// runSagaProcs measures fulfil as Config.Workers `fulfil worker` processes.
func (st *stack) runSagaProcs(ctx context.Context) (Phase, error) {
	procs, err := st.startWorkerProcs(ctx)
	if err != nil {
		return Phase{}, err
	}
	defer stopWorkerProcs(procs)
	t := sagaTarget()
	t.inFlight = inFlightOf(ctx, procs)
	// Counted by the server: every `fulfil worker` names its connection "fulfil"
	// (cmd/fulfil/natsconn.go); the bench's own connections are "fulfil-bench-…".
	t.msgs = func() (uint64, error) { return st.clientMsgs(workerConnName) }
	// A scrape of /metrics costs the worker CPU: sample ten times a second.
	t.sampleEvery = 100 * time.Millisecond
	t.usage = func() usage { return procUsage(procs) }
	t.processes = true
	t.resetPeak = func() {
		for _, p := range procs {
			resetProcPeakRSS(p.pid)
		}
	}
	return st.measure(ctx, t)
}
