package idempotency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of Config.
const (
	DefaultBucket   = "FULFIL_SAGAS"
	DefaultTTL      = 30 * 24 * time.Hour
	DefaultLeaseTTL = 30 * time.Second
)

// maxAttempts bounds the re-read-and-decide rounds of one Acquire or Handle write that keeps
// losing compare-and-set races.
const maxAttempts = 8

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Config configures a Store. Zero fields take the defaults given beside them.
type Config struct {
	// Bucket is the KV bucket name (default "FULFIL_SAGAS").
	Bucket string
	// TTL is how long a record is kept after its last write (default 30 days). A key older
	// than that is forgotten and would run again; see the package documentation.
	TTL time.Duration
	// Replicas of the bucket (default 1; 3 on a cluster).
	Replicas int
	// Storage of the bucket (default jetstream.FileStorage).
	Storage jetstream.StorageType
	// LeaseTTL is how long a lease lasts after each write unless renewed (default 30s).
	LeaseTTL time.Duration
	// Now is the clock for leases and timestamps (default time.Now).
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Bucket == "" {
		c.Bucket = DefaultBucket
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = DefaultLeaseTTL
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports the first invalid field of c, with zero fields taking their defaults.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case !bucketName.MatchString(c.Bucket):
		return fmt.Errorf("idempotency: bucket name %q: want letters, digits, '-' and '_'", c.Bucket)
	case c.TTL < 0:
		return fmt.Errorf("idempotency: TTL %s is negative", c.TTL)
	case c.Replicas < 1 || c.Replicas > 5:
		return fmt.Errorf("idempotency: replicas %d: want 1 to 5", c.Replicas)
	case c.Storage != jetstream.FileStorage && c.Storage != jetstream.MemoryStorage:
		return fmt.Errorf("idempotency: unknown storage type %d", c.Storage)
	case c.LeaseTTL < 0:
		return fmt.Errorf("idempotency: lease TTL %s is negative", c.LeaseTTL)
	}
	return nil
}

// Store keeps one record per idempotency key in a JetStream KV bucket. It is safe for
// concurrent use.
type Store struct {
	kv     jetstream.KeyValue
	cfg    Config
	health writeHealth
}

// Open creates the bucket or updates its configuration, so every worker may call it at start-up,
// and returns a Store on it. It returns an error if cfg is invalid or JetStream refuses.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "fulfil: one saga record per idempotency key",
		History:     1,
		TTL:         cfg.TTL,
		Storage:     cfg.Storage,
		Replicas:    cfg.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("idempotency: open bucket %s: %w", cfg.Bucket, err)
	}
	return &Store{kv: kv, cfg: cfg}, nil
}

// Bind returns a Store on an existing bucket without creating or changing it, for read-only
// tools such as `fulfil status`: Open would reset a bucket's TTL to the caller's config. Config
// reports the bucket's actual TTL. Bind returns an error matching jetstream.ErrBucketNotFound
// if the bucket does not exist.
func Bind(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("idempotency: bind bucket %s: %w", cfg.Bucket, err)
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("idempotency: bind bucket %s: %w", cfg.Bucket, err)
	}
	cfg.TTL = st.TTL()
	return &Store{kv: kv, cfg: cfg}, nil
}

// Config returns the store's configuration with defaults applied.
func (s *Store) Config() Config { return s.cfg }

// Acquire takes the lease on key for owner and returns a Handle for the saga's writes.
//
// A new key gets a record with Status running, the given sagaID, fingerprint and request, and
// lease epoch 1. For an existing key, in this order:
//   - a different fingerprint fails with a *ConflictError (ErrConflict); nothing is written;
//   - a finished saga fails with a *FinishedError (ErrFinished) carrying the stored outcome;
//   - a live lease of another owner fails with a *LeasedError (ErrLeased);
//   - otherwise the lease is taken over: epoch and Deliveries grow by one, and the previous
//     holder's handle is fenced. This includes a live lease of the same owner, so an owner
//     should name one attempt (for example a worker ID with the message's delivery).
//
// An existing record keeps its saga ID and request. Lost compare-and-set races are retried;
// after too many, Acquire fails with ErrContended. An invalid key fails with ErrInvalidKey.
func (s *Store) Acquire(ctx context.Context, key, sagaID, fingerprint string, request json.RawMessage, owner string) (*Handle, error) {
	return s.acquire(ctx, key, sagaID, fingerprint, request, owner, false)
}

// Reopen is Acquire for an operator's replay of a failed purchase: a key that finished with a
// failed outcome is taken over and set running again from its checkpoint (the saga resumes, so
// an order that exists is found, never placed twice). The failed outcome is cleared and
// Reopened grows by one. A completed key still fails with a *FinishedError, a different
// fingerprint with a *ConflictError, and a live lease with a *LeasedError.
func (s *Store) Reopen(ctx context.Context, key, sagaID, fingerprint string, request json.RawMessage, owner string) (*Handle, error) {
	return s.acquire(ctx, key, sagaID, fingerprint, request, owner, true)
}

func (s *Store) acquire(ctx context.Context, key, sagaID, fingerprint string, request json.RawMessage, owner string, reopen bool) (*Handle, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if owner == "" {
		return nil, errors.New("idempotency: acquire: empty owner")
	}
	k := EncodeKey(key)
	if !reopen {
		// Most keys are new: try to create the record first, which needs one round trip.
		h, err := s.create(ctx, k, key, sagaID, fingerprint, request, owner)
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return h, err
		}
	}
	for range maxAttempts {
		rec, rev, err := s.get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			h, err := s.create(ctx, k, key, sagaID, fingerprint, request, owner)
			if errors.Is(err, jetstream.ErrKeyExists) {
				continue // created concurrently: decide again on its record
			}
			return h, err
		}
		if err != nil {
			return nil, err
		}
		now := s.now()
		switch {
		case rec.Fingerprint != fingerprint:
			return nil, &ConflictError{Record: rec}
		case reopen && rec.Status == StatusFailed:
			rec.Status = StatusRunning
			rec.OutcomeType, rec.Outcome, rec.OutcomeSeq = "", nil, 0
			rec.Reopened++
		case rec.Finished():
			return nil, &FinishedError{Record: rec}
		case rec.Lease.Owner != owner && rec.Lease.Live(now):
			return nil, &LeasedError{Key: key, Owner: rec.Lease.Owner, Expires: rec.Lease.Expires}
		}
		rec.Lease = Lease{Owner: owner, Epoch: rec.Lease.Epoch + 1, Expires: now.Add(s.cfg.LeaseTTL)}
		rec.Deliveries++
		rec.UpdatedAt = now
		rev, err = s.put(ctx, k, rec, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // someone else wrote first: decide again
		}
		if err != nil {
			return nil, fmt.Errorf("idempotency: acquire %q: %w", key, err)
		}
		return &Handle{s: s, k: k, rec: rec, rev: rev}, nil
	}
	return nil, fmt.Errorf("acquire %q: %w", key, ErrContended)
}

func (s *Store) create(ctx context.Context, k, key, sagaID, fingerprint string, request json.RawMessage, owner string) (*Handle, error) {
	now := s.now()
	rec := Record{
		Key:         key,
		SagaID:      sagaID,
		Fingerprint: fingerprint,
		Request:     request,
		Status:      StatusRunning,
		Lease:       Lease{Owner: owner, Epoch: 1, Expires: now.Add(s.cfg.LeaseTTL)},
		Deliveries:  1,
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	buf := getBuf()
	defer putBuf(buf)
	b, err := appendRecord((*buf)[:0], &rec)
	if err != nil {
		return nil, fmt.Errorf("idempotency: encode record %q: %w", key, err)
	}
	*buf = b
	rev, err := s.kv.Create(ctx, k, b)
	s.observe(err)
	if err != nil {
		return nil, fmt.Errorf("idempotency: create %q: %w", key, err)
	}
	return &Handle{s: s, k: k, rec: rec.clone(), rev: rev}, nil
}

// Get returns the record of key. It returns an error matching ErrNotFound if there is none
// (never stored, or expired), and ErrInvalidKey for an invalid key.
func (s *Store) Get(ctx context.Context, key string) (Record, error) {
	if err := ValidateKey(key); err != nil {
		return Record{}, err
	}
	rec, _, err := s.get(ctx, EncodeKey(key))
	return rec, err
}

// List returns all records, ordered by key. It reads the whole bucket, so it is meant for
// operator tools, not for the request path.
func (s *Store) List(ctx context.Context) ([]Record, error) {
	// The watcher's subscription lives until its context ends, not only until Stop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("idempotency: list: %w", err)
	}
	defer w.Stop()
	var recs []Record
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("idempotency: list: %w", ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, errors.New("idempotency: list: watcher stopped")
			}
			if e == nil { // all current values delivered
				slices.SortFunc(recs, func(a, b Record) int { return strings.Compare(a.Key, b.Key) })
				return recs, nil
			}
			if e.Key() == probeKey {
				continue
			}
			var rec Record
			if err := json.Unmarshal(e.Value(), &rec); err != nil {
				return nil, fmt.Errorf("idempotency: list: decode record %s: %w", e.Key(), err)
			}
			recs = append(recs, rec)
		}
	}
}

// get reads the record stored under the encoded key k and its revision.
func (s *Store) get(ctx context.Context, k string) (Record, uint64, error) {
	e, err := s.kv.Get(ctx, k)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Record{}, 0, ErrNotFound
	}
	if err != nil {
		return Record{}, 0, fmt.Errorf("idempotency: get %s: %w", k, err)
	}
	var rec Record
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Record{}, 0, fmt.Errorf("idempotency: decode record %s: %w", k, err)
	}
	return rec, e.Revision(), nil
}

// put writes rec under k if its revision is still rev and returns the new revision. A lost
// race returns an error matching jetstream.ErrKeyRevisionMismatch.
func (s *Store) put(ctx context.Context, k string, rec Record, rev uint64) (uint64, error) {
	buf := getBuf()
	defer putBuf(buf)
	b, err := appendRecord((*buf)[:0], &rec)
	if err != nil {
		return 0, fmt.Errorf("encode record: %w", err)
	}
	*buf = b
	rev, err = s.kv.Update(ctx, k, b, rev)
	s.observe(err)
	return rev, err
}

// bufs holds encoding buffers of records: a write's buffer is free again once the write
// returns (the client has copied it to the connection by then).
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() *[]byte { return bufs.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 { // an outsized record's buffer is left to the collector
		bufs.Put(b)
	}
}

// now reads the clock without monotonic reading, so stored and in-memory times compare equal.
func (s *Store) now() time.Time { return s.cfg.Now().UTC().Round(0) }
