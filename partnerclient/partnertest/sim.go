package partnertest

import (
	crand "crypto/rand"
	"encoding/binary"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/fulfil/fulfil/partnerclient"
)

// Default credentials accepted by a Sim unless WithCredentials says otherwise.
const (
	DefaultClientID     = "fulfil-sim"
	DefaultClientSecret = "fulfil-sim-secret"
)

// Default token lifetimes, as documented.
const (
	DefaultTokenTTL   = 30 * time.Minute
	DefaultRefreshTTL = 15 * 24 * time.Hour
)

// Sim is the simulated partner API: an http.Handler with its state. It is safe for concurrent use.
type Sim struct {
	clientID     string
	clientSecret string
	tokenTTL     time.Duration
	refreshTTL   time.Duration
	now          func() time.Time
	seed         int64
	hasSeed      bool
	noSeedData   bool

	mu       sync.Mutex
	rng      *rand.Rand
	faults   map[partnerclient.Endpoint]Faults
	oneShot  map[partnerclient.Endpoint][]FaultKind
	access   map[string]time.Time // access token → expiry
	refresh  map[string]time.Time // refresh token → expiry
	issued   []string             // every token issued, for IssuedTokens
	requests []Recorded
	calls    map[partnerclient.Endpoint]int
	arrivals meter // the rate of requests received (rate.go)

	requestLimit  int
	limitRequests bool

	offerings map[int64]*offering
	products  map[string]*product
	prodSeq   int64
	contacts  []partnerclient.BillingContact
	users     []partnerclient.SubordinateUser

	orders      []*order
	numbers     map[string]bool // order and transaction numbers handed out
	nextOrderID int64

	refusalCode     string
	refusalMessage  string
	orderStatus     string
	activationDelay int

	hostile      Hostile
	hostileSince time.Time // when hostile was set, for RedirectFor
}

// Option configures a Sim.
type Option func(*Sim)

// WithCredentials sets the client ID and secret the token endpoint accepts
// (default DefaultClientID / DefaultClientSecret).
func WithCredentials(clientID, clientSecret string) Option {
	return func(s *Sim) { s.clientID, s.clientSecret = clientID, clientSecret }
}

// WithTokenTTL sets the access token lifetime (default 30 minutes). expiresIn reports it in
// whole seconds, at least "1".
func WithTokenTTL(d time.Duration) Option {
	return func(s *Sim) { s.tokenTTL = d }
}

// WithRefreshTTL sets the refresh token lifetime (default 15 days).
func WithRefreshTTL(d time.Duration) Option {
	return func(s *Sim) { s.refreshTTL = d }
}

// WithClock sets the clock used for token expiry, timestamps and recorded requests
// (default time.Now). Latency always uses real time.
func WithClock(now func() time.Time) Option {
	return func(s *Sim) { s.now = now }
}

// WithSeed seeds the random source of faults, jitter, serial numbers, order numbers and
// activation codes, so that the same sequence of calls gives the same answers. Without it the
// seed is random. Tokens and request IDs are always random.
func WithSeed(seed int64) Option {
	return func(s *Sim) { s.seed, s.hasSeed = seed, true }
}

// WithFaults sets the probabilistic faults and latency of one endpoint.
func WithFaults(ep partnerclient.Endpoint, f Faults) Option {
	return func(s *Sim) { s.faults[ep] = f }
}

// WithoutSeedData starts with an empty catalogue, no billing contacts, no subordinate users and
// no products; tests add their own with AddPlan, AddService, AddBillingContact,
// AddSubordinateUser and AddProduct.
func WithoutSeedData() Option {
	return func(s *Sim) { s.noSeedData = true }
}

// New returns a Sim configured by opts, holding the default catalogue and account
// (see the seed constants) unless WithoutSeedData is given.
func New(opts ...Option) *Sim {
	s := &Sim{
		clientID:     DefaultClientID,
		clientSecret: DefaultClientSecret,
		tokenTTL:     DefaultTokenTTL,
		refreshTTL:   DefaultRefreshTTL,
		now:          time.Now,
		faults:       make(map[partnerclient.Endpoint]Faults),
		oneShot:      make(map[partnerclient.Endpoint][]FaultKind),
		access:       make(map[string]time.Time),
		refresh:      make(map[string]time.Time),
		calls:        make(map[partnerclient.Endpoint]int),
		offerings:    make(map[int64]*offering),
		products:     make(map[string]*product),
		numbers:      make(map[string]bool),
		nextOrderID:  firstOrderID,
		orderStatus:  statusSucceed,
	}
	for _, opt := range opts {
		opt(s)
	}
	if !s.hasSeed {
		var b [8]byte
		_, _ = crand.Read(b[:])
		s.seed = int64(binary.LittleEndian.Uint64(b[:]))
	}
	s.hostileSince = s.clock()
	s.rng = rand.New(rand.NewPCG(uint64(s.seed), uint64(s.seed)^0x9e3779b97f4a7c15))
	if !s.noSeedData {
		s.seedData()
	}
	return s
}

// Server is a Sim served by an httptest.Server on loopback.
type Server struct {
	*Sim
	// URL is the base URL of the simulator, e.g. "http://127.0.0.1:40123".
	URL string

	srv *httptest.Server
}

// NewServer starts a Sim configured by opts on a loopback port. Call Close when done.
func NewServer(opts ...Option) *Server {
	sim := New(opts...)
	srv := httptest.NewServer(sim)
	return &Server{Sim: sim, URL: srv.URL, srv: srv}
}

// Close closes every client connection (cutting short any simulated latency) and shuts the
// server down.
func (s *Server) Close() {
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// clock returns the simulator's current time.
func (s *Sim) clock() time.Time { return s.now() }
