package bench

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/fulfil/fulfil/messages"
	"github.com/fulfil/fulfil/workflow"
)

// target is one implementation under test, as the load generator sees it.
type target struct {
	name      string
	requested string // subject the requests are published on
	stream    string // stream holding the result events
	completed string // subject of a completed outcome
	failed    string // subject of a failed outcome ("" if there is none)
	// msgs counts the messages in and out of the implementation's connections (nil: not
	// measured).
	msgs     func() (uint64, error)
	inFlight func() int
	// sampleEvery is the interval of the in-flight samples (default 10ms).
	sampleEvery time.Duration
	// usage reads the measured processes' CPU time and resident set; resetPeak starts a new
	// peak. Both default to this process.
	usage     func() usage
	resetPeak func()
	// processes: usage measures other processes (this one's CPU is added to the total).
	processes bool
}

// requestBody is a new-license purchase under key.
func requestBody(key string) []byte {
	return fmt.Appendf(nil, `{"idempotencyKey":%q,"plan":{"name":"Enterprise Plan"},"quantity":20}`, key)
}

// purchases returns n keys named after prefix and t, and their request bodies.
func purchases(prefix string, t target, n int) (keys []string, bodies [][]byte) {
	keys = make([]string, n)
	bodies = make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%s-%07d", prefix, t.name, i)
		bodies[i] = requestBody(keys[i])
	}
	return keys, bodies
}

// follow starts recording the outcome events of keys.
func (st *stack) follow(ctx context.Context, t target, keys []string) (*outcomes, func(), error) {
	out := newOutcomes(keys, t.completed)
	subjects := []string{t.completed}
	if t.failed != "" {
		subjects = append(subjects, t.failed)
	}
	cons, err := st.js.OrderedConsumer(ctx, t.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: subjects, DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return nil, nil, fmt.Errorf("bench: follow %s: %w", t.stream, err)
	}
	cc, err := cons.Consume(out.record)
	if err != nil {
		return nil, nil, fmt.Errorf("bench: follow %s: %w", t.stream, err)
	}
	return out, cc.Stop, nil
}

// warmUp runs Config.Warmup purchases through t, all at once, and waits for their outcomes:
// connections are opened, heaps, stacks and store files have grown, before anything is
// measured. Its purchases must complete exactly once like the measured ones.
func (st *stack) warmUp(ctx context.Context, t target) error {
	n := st.cfg.Warmup
	if n <= 0 {
		return nil
	}
	keys, bodies := purchases("warm", t, n)
	out, stop, err := st.follow(ctx, t, keys)
	if err != nil {
		return err
	}
	defer stop()
	if _, err := st.publish(ctx, t.requested, 0, keys, bodies, out.sent); err != nil {
		return err
	}
	if err := out.wait(ctx, st.cfg.Timeout); err != nil {
		return err
	}
	p := out.phase(t.name, time.Now())
	if orders, ok := st.checkLedger(keys); p.Completed != n || !ok {
		return fmt.Errorf("%w: %s warm-up: %d of %d completed, %d failed (%s), %d orders",
			ErrIncomplete, t.name, p.Completed, n, p.Failed, out.firstFailure, orders)
	}
	return nil
}

// measure warms t up, then publishes the purchases to it, waits for their outcomes and
// measures.
func (st *stack) measure(ctx context.Context, t target) (Phase, error) {
	if err := st.warmUp(ctx, t); err != nil {
		return Phase{}, err
	}
	n := st.cfg.Purchases
	keys, bodies := purchases("bench", t, n)
	out, stop, err := st.follow(ctx, t, keys)
	if err != nil {
		return Phase{}, err
	}
	defer stop()

	before, err := st.snapshot(ctx, t.msgs)
	if err != nil {
		return Phase{}, err
	}
	if t.usage == nil {
		t.usage = selfUsage
		t.resetPeak = func() {
			debug.FreeOSMemory()
			resetPeakRSS()
		}
	}
	t.resetPeak()
	self0 := cpuTime()
	sched0 := readSched()
	mBusy0, mTotal0 := machineTicks()
	u0 := t.usage()
	baseRSS, cpu0 := u0.rss, u0.cpu
	stopSampling := make(chan struct{})
	if t.sampleEvery == 0 {
		t.sampleEvery = 10 * time.Millisecond
	}
	inFlight := sampleInFlight(stopSampling, t.sampleEvery, t.inFlight)

	start := time.Now()
	span, err := st.publish(ctx, t.requested, st.cfg.Rate, keys, bodies, out.sent)
	if err != nil {
		close(stopSampling)
		return Phase{}, err
	}
	if err := out.wait(ctx, st.cfg.Timeout); err != nil {
		close(stopSampling)
		return Phase{}, err
	}
	u1 := t.usage()
	self1 := cpuTime()
	sched1 := readSched()
	mBusy1, mTotal1 := machineTicks()
	cpu, peakRSS := u1.cpu-cpu0, u1.peak
	total := cpu
	if t.processes {
		total += self1 - self0
	}
	close(stopSampling)

	after, err := st.snapshot(ctx, t.msgs)
	if err != nil {
		return Phase{}, err
	}
	p := out.phase(t.name, start)
	p.OfferedRate = rate(n, span)
	if p.Completed > 0 {
		per := 1 / float64(p.Completed)
		p.PartnerCallsPerSaga = float64(after.calls-before.calls) * per
		if t.msgs != nil {
			p.ClientMsgsPerSaga = float64(after.msgs-before.msgs) * per
		}
		p.StoredByStream = make(map[string]uint64)
		var stored uint64
		for name, seq := range after.lastSeq {
			if d := seq - before.lastSeq[name]; d > 0 {
				p.StoredByStream[name] = d
				stored += d
			}
		}
		p.StoredPerSaga = float64(stored) * per
		p.CPUPer1000 = cpu.Seconds() * per * 1000
		p.TotalCPUPer1000 = total.Seconds() * per * 1000
	}
	p.CPUSeconds, p.TotalCPUSeconds = cpu.Seconds(), total.Seconds()
	p.Cores = runtime.NumCPU()
	p.SchedLatency = schedLatency(sched0, sched1)
	if mTotal1 > mTotal0 {
		p.MachineBusy = float64(mBusy1-mBusy0) / float64(mTotal1-mTotal0)
	}
	if p.Elapsed > 0 {
		p.CPUBusy = total.Seconds() / (p.Elapsed.Seconds() * float64(p.Cores))
	}
	p.BaseRSS, p.PeakRSS = baseRSS, peakRSS
	fl := <-inFlight
	p.PeakInFlight, p.MeanInFlight = fl.peak, fl.mean
	if peakRSS > baseRSS && p.PeakInFlight > 0 {
		p.RSSPer1000 = float64(peakRSS-baseRSS) / float64(p.PeakInFlight) * 1000
	}
	p.Orders, p.OrdersOK = st.checkLedger(keys)
	if p.Completed != n || p.Failed > 0 || p.Duplicates > 0 || !p.OrdersOK {
		return p, fmt.Errorf("%w: %s: %d of %d completed, %d failed (%s), %d duplicate outcomes, %d orders",
			ErrIncomplete, t.name, p.Completed, n, p.Failed, out.firstFailure, p.Duplicates, p.Orders)
	}
	return p, nil
}

// publish publishes the requests, at perSecond or (0) all at once, recording each publish
// time in sent, and waits for the stream to acknowledge them. It returns the time the
// publishing took.
func (st *stack) publish(ctx context.Context, subject string, perSecond float64, keys []string, bodies [][]byte, sent []time.Time) (time.Duration, error) {
	var interval time.Duration
	if perSecond > 0 {
		interval = time.Duration(float64(time.Second) / perSecond)
	}
	start := time.Now()
	futures := make([]jetstream.PubAckFuture, 0, len(keys))
	for i, key := range keys {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		m := nats.NewMsg(subject)
		m.Data = bodies[i]
		sent[i] = time.Now()
		f, err := st.js.PublishMsgAsync(m, jetstream.WithMsgID(messages.RequestMsgID(key, bodies[i])))
		if err != nil {
			return 0, fmt.Errorf("bench: publish %s: %w", key, err)
		}
		futures = append(futures, f)
	}
	span := time.Since(start)
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return 0, fmt.Errorf("bench: publish %s: %w", f.Msg().Header.Get(jetstream.MsgIDHeader), err)
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return span, nil
}

// connMsgs counts the messages in and out of conns, on the client side.
func connMsgs(conns []*nats.Conn) func() (uint64, error) {
	return func() (uint64, error) {
		var n uint64
		for _, nc := range conns {
			cs := nc.Stats()
			n += cs.InMsgs + cs.OutMsgs
		}
		return n, nil
	}
}

// snapshot is what measure compares before and after a phase.
type snapshot struct {
	lastSeq map[string]uint64 // per stream (server side)
	msgs    uint64            // messages in and out of the implementation's connections
	calls   int               // requests received by the simulator
}

func (st *stack) snapshot(ctx context.Context, msgs func() (uint64, error)) (snapshot, error) {
	s := snapshot{lastSeq: make(map[string]uint64)}
	l := st.js.ListStreams(ctx)
	for info := range l.Info() {
		s.lastSeq[info.Config.Name] = info.State.LastSeq
	}
	if err := l.Err(); err != nil {
		return s, fmt.Errorf("bench: list streams: %w", err)
	}
	if msgs != nil {
		n, err := msgs()
		if err != nil {
			return s, fmt.Errorf("bench: count messages: %w", err)
		}
		s.msgs = n
	}
	for _, n := range st.sim.CallCounts() {
		s.calls += n
	}
	return s, nil
}

// checkLedger counts the simulator's orders for keys and reports whether each has exactly one.
func (st *stack) checkLedger(keys []string) (orders int, ok bool) {
	byPO := make(map[string]int)
	for _, o := range st.sim.Orders() {
		byPO[o.PONumber]++
	}
	ok = true
	for _, k := range keys {
		c := byPO[workflow.DefaultPONumber(k)]
		orders += c
		ok = ok && c == 1
	}
	return orders, ok
}

// inFlightStats is what sampleInFlight saw: the largest value and the mean of all samples.
type inFlightStats struct {
	peak int
	mean float64
}

// sampleInFlight samples f every interval until stop is closed, then sends the largest value
// seen and the mean of the samples.
func sampleInFlight(stop <-chan struct{}, every time.Duration, f func() int) <-chan inFlightStats {
	out := make(chan inFlightStats, 1)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		peak, sum, n := 0, 0, 0
		for {
			select {
			case <-stop:
				v := f()
				peak, sum, n = max(peak, v), sum+v, n+1
				out <- inFlightStats{peak: peak, mean: float64(sum) / float64(n)}
				return
			case <-t.C:
				v := f()
				peak, sum, n = max(peak, v), sum+v, n+1
			}
		}
	}()
	return out
}

func rate(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// outcomes collects the result events of one phase.
type outcomes struct {
	index     map[string]int
	completed string
	sent      []time.Time // written by the publisher before the outcome can arrive

	mu           sync.Mutex
	got          []time.Time
	ok           []bool
	answered     int
	failed       int
	dups         int
	firstFailure string
	last         time.Time
	done         chan struct{}
}

func newOutcomes(keys []string, completedSubject string) *outcomes {
	o := &outcomes{
		index:     make(map[string]int, len(keys)),
		completed: completedSubject,
		sent:      make([]time.Time, len(keys)),
		got:       make([]time.Time, len(keys)),
		ok:        make([]bool, len(keys)),
		done:      make(chan struct{}),
	}
	for i, k := range keys {
		o.index[k] = i
	}
	return o
}

// record notes one result event.
func (o *outcomes) record(m jetstream.Msg) {
	now := time.Now()
	i, known := o.index[m.Headers().Get(messages.HeaderIdempotencyKey)]
	if !known {
		return
	}
	success := m.Subject() == o.completed
	var reason string
	if !success {
		reason = "unreadable failure"
		if ev, err := messages.DecodeEvent(m.Data()); err == nil {
			if f, ok := ev.(*messages.Failed); ok {
				reason = fmt.Sprintf("%s at %s: %s", f.Reason, f.Step, f.Message)
			}
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.got[i].IsZero() {
		o.dups++
		return
	}
	o.got[i], o.ok[i], o.last = now, success, now
	if !success {
		o.failed++
		if o.firstFailure == "" {
			o.firstFailure = reason
		}
	}
	o.answered++
	if o.answered == len(o.got) {
		close(o.done)
	}
}

// wait waits until every purchase has an outcome or timeout has passed (the phase then counts
// what arrived); it returns ctx's error if ctx ends first.
func (o *outcomes) wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-o.done:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	return nil
}

// phase summarises the outcomes of a phase that started at start.
func (o *outcomes) phase(name string, start time.Time) Phase {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := Phase{Name: name, Purchases: len(o.got), Failed: o.failed, Duplicates: o.dups}
	lat := make([]time.Duration, 0, len(o.got))
	for i, t := range o.got {
		if o.ok[i] {
			lat = append(lat, t.Sub(o.sent[i]))
		}
	}
	p.Completed = len(lat)
	p.Latency = percentiles(lat)
	if !o.last.IsZero() {
		p.Elapsed = o.last.Sub(start)
		p.Throughput = rate(p.Completed, p.Elapsed)
	}
	return p
}
