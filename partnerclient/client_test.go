package partnerclient

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/fulfil/fulfil/internal/testutil"
)

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		give    string
		opts    []Option
		wantErr bool
	}{
		{name: "https", give: "https://openapi.partner.yeastar.com"},
		{name: "https trailing slash and path", give: "https://gw.example/partner/"},
		{name: "loopback v4", give: "http://127.0.0.1:8080"},
		{name: "loopback v6", give: "http://[::1]:8080"},
		{name: "localhost", give: "http://localhost:8080"},
		{name: "plain http remote", give: "http://partner.example", wantErr: true},
		{name: "plain http remote allowed", give: "http://partner.example", opts: []Option{WithAllowInsecure(true)}},
		{name: "other scheme", give: "ftp://partner.example", wantErr: true},
		{name: "other scheme even insecure", give: "ws://partner.example", opts: []Option{WithAllowInsecure(true)}, wantErr: true},
		{name: "no host", give: "https://", wantErr: true},
		{name: "empty", give: "", wantErr: true},
		{name: "garbage", give: "://x", wantErr: true},
		{name: "user info", give: "https://user:pw@partner.example", wantErr: true},
		{name: "query", give: "https://partner.example?x=1", wantErr: true},
		{name: "nil option", give: "https://p.example", opts: []Option{nil}, wantErr: true},
		{name: "credentials", give: "https://p.example", opts: []Option{WithCredentials("id", "secret")}},
		{name: "empty credentials", give: "https://p.example", opts: []Option{WithCredentials("", "")}},
		{name: "client id line break", give: "https://p.example", opts: []Option{WithCredentials("id\n", "s")}, wantErr: true},
		{name: "http client", give: "https://p.example", opts: []Option{WithHTTPClient(&http.Client{})}},
		{name: "nil http client", give: "https://p.example", opts: []Option{WithHTTPClient(nil)}, wantErr: true},
		{name: "user agent", give: "https://p.example", opts: []Option{WithUserAgent("shop/1")}},
		{name: "empty user agent", give: "https://p.example", opts: []Option{WithUserAgent(" ")}, wantErr: true},
		{name: "user agent line break", give: "https://p.example", opts: []Option{WithUserAgent("a\r\nX: y")}, wantErr: true},
		{name: "rate unlimited", give: "https://p.example", opts: []Option{WithRateLimit(0, 0)}},
		{name: "rate", give: "https://p.example", opts: []Option{WithRateLimit(2.5, 1)}},
		{name: "rate negative", give: "https://p.example", opts: []Option{WithRateLimit(-1, 1)}, wantErr: true},
		{name: "rate NaN", give: "https://p.example", opts: []Option{WithRateLimit(math.NaN(), 1)}, wantErr: true},
		{name: "rate Inf", give: "https://p.example", opts: []Option{WithRateLimit(math.Inf(1), 1)}, wantErr: true},
		{name: "rate zero burst", give: "https://p.example", opts: []Option{WithRateLimit(1, 0)}, wantErr: true},
		{name: "max in flight", give: "https://p.example", opts: []Option{WithMaxInFlight(4)}},
		{name: "max in flight unbounded", give: "https://p.example", opts: []Option{WithMaxInFlight(0)}},
		{name: "max in flight negative", give: "https://p.example", opts: []Option{WithMaxInFlight(-1)}, wantErr: true},
		{name: "timeout", give: "https://p.example", opts: []Option{WithRequestTimeout(time.Second)}},
		{name: "timeout off", give: "https://p.example", opts: []Option{WithRequestTimeout(0)}},
		{name: "timeout negative", give: "https://p.example", opts: []Option{WithRequestTimeout(-time.Second)}, wantErr: true},
		{name: "margin", give: "https://p.example", opts: []Option{WithTokenRefreshMargin(0)}},
		{name: "margin negative", give: "https://p.example", opts: []Option{WithTokenRefreshMargin(-1)}, wantErr: true},
		{name: "logger", give: "https://p.example", opts: []Option{WithLogger(zap.NewNop())}},
		{name: "nil logger", give: "https://p.example", opts: []Option{WithLogger(nil)}, wantErr: true},
		{name: "clock", give: "https://p.example", opts: []Option{WithClock(time.Now)}},
		{name: "nil clock", give: "https://p.example", opts: []Option{WithClock(nil)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.give, tt.opts...)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidOption) || c != nil {
					t.Fatalf("New = %v, %v; want an error wrapping ErrInvalidOption", c, err)
				}
				return
			}
			if err != nil || c == nil {
				t.Fatalf("New: %v", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New("https://p.example/")
	if err != nil {
		t.Fatal(err)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok || tr.MaxIdleConnsPerHost != MaxConnsPerHost || tr.MaxConnsPerHost != MaxConnsPerHost || tr.IdleConnTimeout != 90*time.Second || !tr.ForceAttemptHTTP2 || tr.TLSHandshakeTimeout == 0 {
		t.Errorf("default transport %+v", c.hc.Transport)
	}
	if c.userAgent != "fulfil/0.1.0 (+https://github.com/fulfil/fulfil)" || c.requestTimeout != 15*time.Second ||
		c.refreshMargin != time.Minute || c.limiter.Limit() != 50 || c.limiter.Burst() != 100 || c.base.String() != "https://p.example" {
		t.Errorf("defaults: ua %q timeout %v margin %v limit %v/%d base %s",
			c.userAgent, c.requestTimeout, c.refreshMargin, c.limiter.Limit(), c.limiter.Burst(), c.base)
	}
}

func TestRequests(t *testing.T) {
	f := newFakeAPI(t, nil)
	c := f.client(t, WithUserAgent("test-agent/1"))
	ctx := context.Background()
	order := OrderRequest{OperationType: OperationPurchasePlan, ProductID: 12, BillingID: 3197218168379846218, PONumber: "PO-1",
		ServiceList: []OrderLine{{ServiceType: ServiceTypePlan, ServiceID: 3049041101760282624, Quantity: 100}}}
	renewal := AutoRenewalRequest{ProductNo: "SN1", ProductID: "12", PlanOrServiceID: 3049041101760282624}
	tests := []struct {
		name      string
		call      func() error
		wantPath  string
		wantQuery url.Values
		wantBody  string
	}{
		{"product list", func() error { _, err := c.ListProducts(ctx, ListProductsParams{ProductID: 12}); return err },
			PathProductList, url.Values{"productId": {"12"}, "pageNo": {"1"}, "pageSize": {"25"}}, ""},
		{"product list paged", func() error {
			_, err := c.ListProducts(ctx, ListProductsParams{ProductID: 12, PageNo: 3, PageSize: 100})
			return err
		}, PathProductList, url.Values{"productId": {"12"}, "pageNo": {"3"}, "pageSize": {"100"}}, ""},
		{"product details", func() error { _, err := c.ProductDetails(ctx, 12, "SN1"); return err },
			PathProductDetails, url.Values{"productId": {"12"}, "productNo": {"SN1"}}, ""},
		{"purchase info", func() error { _, err := c.PurchaseInfo(ctx, 12, ""); return err },
			PathPurchaseInfo, url.Values{"productId": {"12"}}, ""},
		{"purchase info with SN", func() error { _, err := c.PurchaseInfo(ctx, 11, "SN2"); return err },
			PathPurchaseInfo, url.Values{"productId": {"11"}, "productNo": {"SN2"}}, ""},
		{"billing contacts", func() error { _, err := c.BillingContacts(ctx); return err }, PathBillingContacts, url.Values{}, ""},
		{"subordinate users", func() error { _, err := c.SubordinateUsers(ctx); return err }, PathSubordinateUsers, url.Values{}, ""},
		{"create order", func() error { _, err := c.CreateOrder(ctx, order); return err }, PathCreateOrder, url.Values{},
			`{"operationType":"purchase_plan","productId":12,"billingId":3197218168379846218,"poNumber":"PO-1","serviceList":[{"serviceType":"plan","serviceId":3049041101760282624,"quantity":100,"purchaseType":"","billingModel":"","billingCycle":"","multiCycle":0}]}`},
		{"order list", func() error { _, err := c.ListOrders(ctx, ListOrdersParams{Sort: "-id"}); return err },
			PathOrderList, url.Values{"pageNo": {"1"}, "pageSize": {"25"}, "sort": {"-id"}}, ""},
		{"order details", func() error { _, err := c.OrderDetails(ctx, "ZC 1/2"); return err }, PathOrderDetailsPrefix + "ZC 1/2", url.Values{}, ""},
		{"auto renew status", func() error { _, err := c.AutoRenewStatus(ctx, 12, "SN1"); return err },
			PathAutoRenewStatus, url.Values{"productId": {"12"}, "productNo": {"SN1"}}, ""},
		{"enable auto renewal", func() error { _, err := c.EnableAutoRenewal(ctx, renewal); return err }, PathEnableAutoRenewal, url.Values{},
			`{"productNo":"SN1","productId":"12","planOrServiceId":3049041101760282624}`},
		{"activation code", func() error { _, err := c.ActivationCode(ctx, 12, "SN1"); return err },
			PathActivationCode, url.Values{"productId": {"12"}, "productNo": {"SN1"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_ = tt.call() // the fake answers `true`, which most decoders refuse; the request is what counts
			got := f.last(t)
			wantMethod, wantType := http.MethodGet, ""
			if tt.wantBody != "" {
				wantMethod, wantType = http.MethodPost, "application/json"
			}
			if got.method != wantMethod || got.path != tt.wantPath || got.contentType != wantType {
				t.Errorf("request %s %s (%s), want %s %s (%s)", got.method, got.path, got.contentType, wantMethod, tt.wantPath, wantType)
			}
			if got.query.Encode() != tt.wantQuery.Encode() {
				t.Errorf("query %s, want %s", got.query.Encode(), tt.wantQuery.Encode())
			}
			if string(got.body) != tt.wantBody {
				t.Errorf("body %s\nwant %s", got.body, tt.wantBody)
			}
			if got.auth != "Bearer access-1" || got.ua != "test-agent/1" {
				t.Errorf("Authorization %q, User-Agent %q", got.auth, got.ua)
			}
		})
	}
	if logins, _, _ := f.counts(); logins != 1 {
		t.Errorf("%d logins for %d calls, want 1", logins, len(tests))
	}
	st := c.stats()
	if st.TokenRequests != 1 || st.TokenRefreshes != 0 || st.Calls[EndpointToken] != 1 || st.Calls[EndpointProductList] != 2 || st.Calls[EndpointCreateOrder] != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestOrderDetailsEmpty(t *testing.T) {
	f := newFakeAPI(t, nil)
	c := f.client(t)
	_, err := c.OrderDetails(context.Background(), " ")
	if !errors.Is(err, ErrValidation) {
		t.Errorf("err = %v, want ErrValidation", err)
	}
	if _, _, n := f.counts(); n != 0 {
		t.Errorf("%d requests sent", n)
	}
}

// TestCallErrors runs each error class through a real HTTP exchange.
func TestCallErrors(t *testing.T) {
	type answer struct {
		status int
		header map[string]string
		body   string
	}
	env := func(status int, code string) string {
		b, _ := json.Marshal(map[string]any{"code": code, "detailMessage": "detail", "requestId": "req-9", "result": map[string]string{"f": "required"}, "status": status})
		return string(b)
	}
	tests := []struct {
		name        string
		give        answer
		sideEffect  bool
		want        Outcome
		wantIs      error
		wantStatus  int
		wantEnv     int
		wantCode    string
		wantRetry   time.Duration
		wantRequest string
	}{
		{name: "validation", give: answer{400, nil, env(400, CodeValidationFailed)}, sideEffect: true,
			want: OutcomePermanent, wantIs: ErrValidation, wantStatus: 400, wantEnv: 400, wantCode: CodeValidationFailed, wantRequest: "req-9"},
		{name: "not found", give: answer{404, nil, env(404, CodeNotFound)},
			want: OutcomePermanent, wantIs: ErrNotFound, wantStatus: 404, wantEnv: 404, wantCode: CodeNotFound, wantRequest: "req-9"},
		{name: "forbidden", give: answer{403, nil, env(403, "ip_forbidden")}, sideEffect: true,
			want: OutcomeAccount, wantStatus: 403, wantEnv: 403, wantCode: "ip_forbidden", wantRequest: "req-9"},
		{name: "undocumented code 200 side effect", give: answer{200, nil, env(200, "insufficient_balance")}, sideEffect: true,
			want: OutcomeUnknown, wantStatus: 200, wantEnv: 200, wantCode: "insufficient_balance", wantRequest: "req-9"},
		{name: "undocumented code without status side effect", give: answer{200, nil, `{"code":"insufficient_balance","requestId":"req-9"}`}, sideEffect: true,
			want: OutcomeUnknown, wantStatus: 200, wantCode: "insufficient_balance", wantRequest: "req-9"},
		{name: "envelope 400 in a 200 side effect", give: answer{200, nil, env(400, "insufficient_balance")}, sideEffect: true,
			want: OutcomePermanent, wantStatus: 200, wantEnv: 400, wantCode: "insufficient_balance", wantRequest: "req-9"},
		{name: "business refusal 200 read", give: answer{200, nil, env(200, "no_permission")},
			want: OutcomePermanent, wantStatus: 200, wantEnv: 200, wantCode: "no_permission", wantRequest: "req-9"},
		{name: "envelope 500 in a 200 read", give: answer{200, nil, env(500, "system_error")},
			want: OutcomeRetryable, wantStatus: 200, wantEnv: 500, wantCode: "system_error", wantRequest: "req-9"},
		{name: "envelope 500 in a 200 side effect", give: answer{200, nil, env(500, "system_error")}, sideEffect: true,
			want: OutcomeUnknown, wantStatus: 200, wantEnv: 500, wantCode: "system_error", wantRequest: "req-9"},
		{name: "envelope 500 in an undecodable 200 read", give: answer{200, nil, `{"code":"success","requestId":"req-9","result":"nope","status":500}`},
			want: OutcomeRetryable, wantStatus: 200, wantEnv: 500, wantCode: CodeSuccess, wantRequest: "req-9"},
		{name: "429 seconds", give: answer{429, map[string]string{"Retry-After": "3"}, env(429, CodeTooManyRequests)}, sideEffect: true,
			want: OutcomeRetryable, wantIs: ErrRateLimited, wantStatus: 429, wantEnv: 429, wantCode: CodeTooManyRequests, wantRetry: 3 * time.Second, wantRequest: "req-9"},
		{name: "429 date", give: answer{429, map[string]string{"Retry-After": newFakeClock().Now().Add(time.Minute).Format(http.TimeFormat)}, `{}`},
			want: OutcomeRetryable, wantIs: ErrRateLimited, wantStatus: 429, wantRetry: time.Minute},
		{name: "503 read", give: answer{503, nil, "<html>unavailable</html>"},
			want: OutcomeRetryable, wantStatus: 503},
		{name: "503 side effect", give: answer{503, nil, env(503, "busy")}, sideEffect: true,
			want: OutcomeUnknown, wantStatus: 503, wantEnv: 503, wantCode: "busy", wantRequest: "req-9"},
		{name: "2xx garbage read", give: answer{200, nil, `{"code":"success","result":"nope"}`},
			want: OutcomeRetryable, wantStatus: 200, wantCode: CodeSuccess},
		{name: "2xx garbage side effect", give: answer{200, nil, `{"code":"succ`}, sideEffect: true,
			want: OutcomeUnknown, wantStatus: 200},
		{name: "2xx wrong result side effect", give: answer{200, nil, `{"code":"success","requestId":"req-2","result":[1]}`}, sideEffect: true,
			want: OutcomeUnknown, wantStatus: 200, wantCode: CodeSuccess, wantRequest: "req-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.give.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.give.status)
				_, _ = w.Write([]byte(tt.give.body))
			})
			c := f.client(t, WithClock(newFakeClock().Now))
			var err error
			if tt.sideEffect {
				_, err = c.CreateOrder(context.Background(), OrderRequest{ProductID: 12})
			} else {
				_, err = c.ActivationCode(context.Background(), 12, "SN")
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if got, reason := Classify(err); got != tt.want {
				t.Errorf("Classify = %v (%s), want %v; err %v", got, reason, tt.want, err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.wantIs)
			}
			if e.StatusCode != tt.wantStatus || e.EnvelopeStatus != tt.wantEnv || e.Code != tt.wantCode || e.RetryAfter != tt.wantRetry || e.RequestID != tt.wantRequest || !e.Sent {
				t.Errorf("got status %d envelope status %d code %q retry %v request %q sent %v", e.StatusCode, e.EnvelopeStatus, e.Code, e.RetryAfter, e.RequestID, e.Sent)
			}
			if _, _, n := f.counts(); n != 1 {
				t.Errorf("%d requests, want 1 (no retries)", n)
			}
		})
	}
}

func TestValidationResultKept(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, 400, CodeValidationFailed, "billingId: required", map[string]string{"billingId": "required"})
	})
	_, err := f.client(t).CreateOrder(context.Background(), OrderRequest{})
	var e *Error
	if !errors.As(err, &e) || string(e.Result) != `{"billingId":"required"}` {
		t.Fatalf("err %v, want the validation result kept", err)
	}
	if want := "partner create_order: 400 parameter_validation_failed: billingId: required (request_id req-1)"; err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

// TestTransportErrors: a connection closed after the request was read makes a side
// effect unknown; one that never connected is retryable even for a side effect.
func TestTransportErrors(t *testing.T) {
	hangUp := func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	f := newFakeAPI(t, hangUp)
	c := f.client(t)
	ctx := context.Background()

	_, err := c.CreateOrder(ctx, OrderRequest{ProductID: 12})
	if o, _ := Classify(err); o != OutcomeUnknown {
		t.Errorf("create order after hang-up: %v (%v), want unknown", o, err)
	}
	_, err = c.ActivationCode(ctx, 12, "SN")
	if o, _ := Classify(err); o != OutcomeRetryable {
		t.Errorf("read after hang-up: %v (%v), want retryable", o, err)
	}

	// A token is cached; now the server disappears.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c.base.Host = addr
	_, err = c.CreateOrder(ctx, OrderRequest{ProductID: 12})
	var e *Error
	if !errors.As(err, &e) || e.Sent || e.StatusCode != 0 {
		t.Fatalf("refused connection: %v", err)
	}
	if o, _ := Classify(err); o != OutcomeRetryable {
		t.Errorf("create order on a refused connection: %v, want retryable", o)
	}
}

func TestTimeouts(t *testing.T) {
	block := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	tests := []struct {
		name       string
		opts       []Option
		ctxTimeout time.Duration
		sideEffect bool
		want       Outcome
	}{
		{"request timeout read", []Option{WithRequestTimeout(50 * time.Millisecond)}, 0, false, OutcomeRetryable},
		{"request timeout side effect", []Option{WithRequestTimeout(50 * time.Millisecond)}, 0, true, OutcomeUnknown},
		{"caller deadline first", []Option{WithRequestTimeout(time.Hour)}, 50 * time.Millisecond, true, OutcomeUnknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, block)
			c := f.client(t, tt.opts...)
			// The token request runs under the same short timeout; on a loaded machine
			// (-race) it may need another try. The business call is what is under test.
			var err error
			for range 20 {
				if err = c.Authenticate(context.Background()); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if tt.ctxTimeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctxTimeout)
				defer cancel()
			}
			if tt.sideEffect {
				_, err = c.EnableAutoRenewal(ctx, AutoRenewalRequest{ProductNo: "SN"})
			} else {
				_, err = c.BillingContacts(ctx)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want DeadlineExceeded", err)
			}
			if o, _ := Classify(err); o != tt.want {
				t.Errorf("Classify = %v, want %v", o, tt.want)
			}
		})
	}
}

func TestCanceledBeforeSend(t *testing.T) {
	f := newFakeAPI(t, nil)
	c := f.client(t)
	if err := c.Authenticate(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.CreateOrder(ctx, OrderRequest{})
	var e *Error
	if !errors.As(err, &e) || e.Sent || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want an unsent canceled *Error", err)
	}
	if o, _ := Classify(err); o != OutcomeRetryable {
		t.Errorf("Classify = %v, want retryable", o)
	}
}

func TestRateLimit(t *testing.T) {
	f := newFakeAPI(t, nil)
	// Burst 2: the login and one call; the next call would wait for 1000 s.
	c := f.client(t, WithRateLimit(0.001, 2))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.EnableAutoRenewal(ctx, AutoRenewalRequest{}); err != nil {
		t.Fatal(err)
	}
	_, err := c.EnableAutoRenewal(ctx, AutoRenewalRequest{})
	var e *Error
	if !errors.As(err, &e) || e.Sent || e.StatusCode != 0 {
		t.Fatalf("err = %v, want an unsent *Error from the limiter", err)
	}
	if o, _ := Classify(err); o != OutcomeRetryable {
		t.Errorf("Classify = %v, want retryable", o)
	}
	if _, _, n := f.counts(); n != 1 {
		t.Errorf("%d business requests reached the server, want 1", n)
	}
	if got := c.stats().Calls[EndpointEnableAutoRenewal]; got != 1 {
		t.Errorf("stats counted %d calls, want 1 (the limited one was not sent)", got)
	}
}

// TestMaxInFlight checks that no more than the bound of calls reach the server at once, and
// that it is reached. The server holds every call until the test lets one through, so the count
// at the server is the client's doing alone.
func TestMaxInFlight(t *testing.T) {
	const bound, callers = 3, 12
	var (
		mu        sync.Mutex
		now, peak int
	)
	release := make(chan struct{})
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		now++
		peak = max(peak, now)
		mu.Unlock()
		<-release
		mu.Lock()
		now--
		mu.Unlock()
		writeEnvelope(w, http.StatusOK, CodeSuccess, "", true)
	})
	c := f.client(t, WithMaxInFlight(bound), WithRequestTimeout(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.EnableAutoRenewal(ctx, AutoRenewalRequest{})
			errs <- err
		}()
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return now == bound
	}, "%d calls held at the server", bound)
	if n := c.inFlight(); n != bound {
		t.Errorf("slots taken = %d, want %d", n, bound)
	}
	for range callers { // one at a time: each frees a slot that a waiting caller takes
		release <- struct{}{}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("call: %v", err)
		}
	}
	if peak != bound {
		t.Errorf("peak calls at the server = %d, want %d", peak, bound)
	}
	if _, _, n := f.counts(); n != callers {
		t.Errorf("%d calls reached the server, want %d", n, callers)
	}
}

// TestMaxInFlightTimeoutStartsWithTheSlot checks that the request timeout of a call starts
// once it has a slot, not while it waits for one. With one slot, the first two calls are held
// at the server until their own timeout ends them; the third has by then waited about twice
// the timeout for the slot and still succeeds.
func TestMaxInFlightTimeoutStartsWithTheSlot(t *testing.T) {
	const timeout = time.Second
	var arrived atomic.Int32
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) <= 2 {
			<-r.Context().Done() // the client gave up: its timeout ended the call
			return
		}
		writeEnvelope(w, http.StatusOK, CodeSuccess, "", true)
	})
	c := f.client(t, WithMaxInFlight(1), WithRequestTimeout(timeout))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := c.EnableAutoRenewal(ctx, AutoRenewalRequest{})
		first <- err
	}()
	testutil.Eventually(t, 30*time.Second, func() bool { return arrived.Load() == 1 }, "the first call at the server")
	// The slot is taken: the next two calls wait for it.
	type result struct {
		err    error
		waited time.Duration
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			start := time.Now()
			_, err := c.EnableAutoRenewal(ctx, AutoRenewalRequest{})
			results <- result{err, time.Since(start)}
		}()
	}
	if err := <-first; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first call: %v, want its timeout", err)
	}
	var ok, timedOut int
	for range 2 {
		r := <-results
		switch {
		case r.err == nil:
			ok++
			if r.waited <= timeout {
				t.Errorf("the successful call took %s, want more than the %s timeout (it waited for two held calls)", r.waited, timeout)
			}
		case errors.Is(r.err, context.DeadlineExceeded):
			timedOut++
		default:
			t.Errorf("call: %v", r.err)
		}
	}
	if ok != 1 || timedOut != 1 {
		t.Errorf("%d succeeded, %d timed out; want 1 and 1", ok, timedOut)
	}
}

func TestMaxInFlightWaitCanceled(t *testing.T) {
	release := make(chan struct{})
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		writeEnvelope(w, http.StatusOK, CodeSuccess, "", true)
	})
	t.Cleanup(func() { close(release) }) // before the server closes (cleanups run last first)
	c := f.client(t, WithMaxInFlight(1))
	busy, stop := context.WithCancel(context.Background())
	defer stop()
	if err := c.Authenticate(busy); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = c.EnableAutoRenewal(busy, AutoRenewalRequest{}) }()
	testutil.Eventually(t, 30*time.Second, func() bool { return c.inFlight() == 1 }, "the busy call holds the slot")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.EnableAutoRenewal(ctx, AutoRenewalRequest{})
	var e *Error
	if !errors.As(err, &e) || e.Sent || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want an unsent *Error wrapping the deadline", err)
	}
	if o, _ := Classify(err); o != OutcomeRetryable {
		t.Errorf("Classify = %v, want retryable", o)
	}
}

func TestMissingCredentials(t *testing.T) {
	f := newFakeAPI(t, nil)
	tests := []struct {
		name string
		opts []Option
	}{
		{"none", nil},
		{"empty", []Option{WithCredentials("", "")}},
		{"no secret", []Option{WithCredentials("id", "")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(f.srv.URL, tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			errs := []error{c.Authenticate(context.Background())}
			_, err = c.CreateOrder(context.Background(), OrderRequest{})
			errs = append(errs, err)
			for _, err := range errs {
				if !errors.Is(err, ErrMissingCredentials) {
					t.Errorf("err = %v, want ErrMissingCredentials", err)
				}
				if o, _ := Classify(err); o != OutcomeAccount {
					t.Errorf("Classify = %v, want account", o)
				}
			}
			if st := c.stats(); st.TokenRequests != 0 {
				t.Errorf("%d token requests", st.TokenRequests)
			}
		})
	}
}

func TestBadCredentials(t *testing.T) {
	f := newFakeAPI(t, nil)
	c, err := New(f.srv.URL, WithCredentials(testClientID, "wrong"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.BillingContacts(context.Background())
	var e *Error
	if !errors.As(err, &e) || e.Endpoint != EndpointToken || !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want an unauthorized token *Error", err)
	}
	if o, _ := Classify(err); o != OutcomeAccount {
		t.Errorf("Classify = %v, want account", o)
	}
	if _, _, n := f.counts(); n != 0 {
		t.Errorf("%d business requests without a token", n)
	}
}

func TestTokenLazyAndCached(t *testing.T) {
	f := newFakeAPI(t, nil)
	f.tokenHead = "Token"
	c := f.client(t)
	if logins, _, _ := f.counts(); logins != 0 {
		t.Fatalf("New logged in")
	}
	for range 5 {
		if _, err := c.EnableAutoRenewal(context.Background(), AutoRenewalRequest{}); err != nil {
			t.Fatal(err)
		}
	}
	if logins, refreshes, _ := f.counts(); logins != 1 || refreshes != 0 {
		t.Errorf("logins %d refreshes %d, want 1 and 0", logins, refreshes)
	}
	if got := f.last(t).auth; got != "Token access-1" {
		t.Errorf("Authorization %q, want %q", got, "Token access-1")
	}
}

func TestTokenRefresh(t *testing.T) {
	tests := []struct {
		name          string
		expiresIn     string
		margin        time.Duration
		advance       time.Duration
		failRefresh   bool
		wantLogins    int
		wantRefreshes int
		wantAuth      string
	}{
		{"fresh", "1800", time.Minute, 1739 * time.Second, false, 1, 0, "Bearer access-1"},
		{"within margin", "1800", time.Minute, 1740 * time.Second, false, 1, 1, "Bearer access-2"},
		{"expired", "1800", time.Minute, time.Hour, false, 1, 1, "Bearer access-2"},
		{"margin capped at half", "60", time.Minute, 29 * time.Second, false, 1, 0, "Bearer access-1"},
		{"margin capped at half, due", "60", time.Minute, 30 * time.Second, false, 1, 1, "Bearer access-2"},
		{"refresh fails, log in", "1800", time.Minute, time.Hour, true, 2, 1, "Bearer access-2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t, nil)
			f.expiresIn = tt.expiresIn
			f.failRefresh = tt.failRefresh
			clock := newFakeClock()
			c := f.client(t, WithClock(clock.Now), WithTokenRefreshMargin(tt.margin))
			if err := c.Authenticate(context.Background()); err != nil {
				t.Fatal(err)
			}
			clock.Advance(tt.advance)
			if _, err := c.EnableAutoRenewal(context.Background(), AutoRenewalRequest{}); err != nil {
				t.Fatal(err)
			}
			logins, refreshes, _ := f.counts()
			if logins != tt.wantLogins || refreshes != tt.wantRefreshes {
				t.Errorf("logins %d refreshes %d, want %d and %d", logins, refreshes, tt.wantLogins, tt.wantRefreshes)
			}
			if got := f.last(t).auth; got != tt.wantAuth {
				t.Errorf("Authorization %q, want %q", got, tt.wantAuth)
			}
			if st := c.stats(); st.TokenRequests != int64(tt.wantLogins+tt.wantRefreshes) || st.TokenRefreshes != int64(tt.wantRefreshes) {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestReauthenticateOnce(t *testing.T) {
	t.Run("expired access token", func(t *testing.T) {
		f := newFakeAPI(t, nil)
		c := f.client(t)
		if err := c.Authenticate(context.Background()); err != nil {
			t.Fatal(err)
		}
		f.expireAccess()
		ok, err := c.EnableAutoRenewal(context.Background(), AutoRenewalRequest{})
		if err != nil || !ok {
			t.Fatalf("EnableAutoRenewal = %v, %v", ok, err)
		}
		logins, refreshes, business := f.counts()
		if logins != 1 || refreshes != 1 || business != 2 {
			t.Errorf("logins %d refreshes %d business %d, want 1, 1, 2", logins, refreshes, business)
		}
	})
	t.Run("envelope 401 in an HTTP 200", func(t *testing.T) {
		var calls atomic.Int64
		f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				// An undocumented code, but the envelope says 401: log in again and repeat.
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"code":"token_expired","detailMessage":"","requestId":"r","result":null,"status":401}`))
				return
			}
			writeEnvelope(w, http.StatusOK, CodeSuccess, "", true)
		})
		c := f.client(t)
		ok, err := c.AutoRenewStatus(context.Background(), 12, "3651E1292455")
		if err != nil || !ok {
			t.Fatalf("AutoRenewStatus = %v, %v; want the read repeated after a new login", ok, err)
		}
		if logins, refreshes, business := f.counts(); logins+refreshes != 2 || business != 2 {
			t.Errorf("logins %d refreshes %d business %d, want two token requests and 2 business calls", logins, refreshes, business)
		}
	})
	t.Run("envelope 401 in an HTTP 200 to create order", func(t *testing.T) {
		f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"code":"token_expired","detailMessage":"","requestId":"r","result":null,"status":401}`))
		})
		c := f.client(t)
		_, err := c.CreateOrder(context.Background(), OrderRequest{})
		if o, _ := Classify(err); o != OutcomeAccount {
			t.Errorf("Classify(%v) = %v, want account", err, o)
		}
		if _, _, business := f.counts(); business != 1 {
			t.Errorf("%d create order requests, want 1: an envelope alone never makes fulfil send an order again", business)
		}
	})
	t.Run("refused twice", func(t *testing.T) {
		f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
			writeEnvelope(w, http.StatusOK, CodeTokenInvalid, "no", nil)
		})
		c := f.client(t)
		_, err := c.CreateOrder(context.Background(), OrderRequest{})
		if !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("err = %v, want ErrUnauthorized", err)
		}
		if o, _ := Classify(err); o != OutcomeAccount {
			t.Errorf("Classify = %v, want account", o)
		}
		if _, _, business := f.counts(); business != 2 {
			t.Errorf("%d create order requests, want 2 (one repeat)", business)
		}
	})
}

// TestTokenStampede: concurrent callers on a cold client share one token request.
func TestTokenStampede(t *testing.T) {
	f := newFakeAPI(t, nil)
	gate := make(chan struct{})
	f.tokenGate = gate
	c := f.client(t)
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.EnableAutoRenewal(context.Background(), AutoRenewalRequest{})
			errs <- err
		})
	}
	<-f.tokenSeen // the first token request is being served; let the others pile up
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if logins, refreshes, business := f.counts(); logins != 1 || refreshes != 0 || business != n {
		t.Errorf("logins %d refreshes %d business %d, want 1, 0, %d", logins, refreshes, business, n)
	}
	if st := c.stats(); st.TokenRequests != 1 {
		t.Errorf("TokenRequests = %d, want 1", st.TokenRequests)
	}
}

// TestTokenWaitCanceled: a caller that gives up while the shared token request runs
// gets a retryable error; the request itself completes for the others.
func TestTokenWaitCanceled(t *testing.T) {
	f := newFakeAPI(t, nil)
	gate := make(chan struct{})
	f.tokenGate = gate
	c := f.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Authenticate(ctx) }()
	<-f.tokenSeen
	cancel()
	err := <-done
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if o, _ := Classify(err); o != OutcomeRetryable {
		t.Errorf("Classify = %v, want retryable", o)
	}
	close(gate)
	if err := c.Authenticate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logins, _, _ := f.counts(); logins != 1 {
		t.Errorf("%d logins, want 1 (the abandoned one was reused)", logins)
	}
}

// TestNoSecrets: the secret and tokens stay out of errors, String and logs, even when
// the server echoes them back.
func TestNoSecrets(t *testing.T) {
	f := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request) {
		writeEnvelope(w, http.StatusBadRequest, "echo", "you sent "+r.Header.Get("Authorization"), map[string]string{"auth": r.Header.Get("Authorization")})
	})
	core, logs := observer.New(zapcore.DebugLevel)
	c := f.client(t, WithLogger(zap.New(core)))
	var texts []string
	_, err := c.CreateOrder(context.Background(), OrderRequest{})
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v", err)
	}
	texts = append(texts, err.Error(), string(e.Result), c.String())
	f.expireAccess() // a refresh and a refused token
	_, err = c.ActivationCode(context.Background(), 12, "SN")
	texts = append(texts, err.Error())
	bad, err := New(f.srv.URL, WithCredentials(testClientID, testSecret+"x"), WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Authenticate(context.Background()) // the fake echoes the wrong secret
	texts = append(texts, err.Error(), bad.String())
	for _, entry := range logs.All() {
		texts = append(texts, entry.Message)
		for k, v := range entry.ContextMap() {
			texts = append(texts, k+"="+stringify(v))
		}
	}
	if logs.Len() == 0 {
		t.Fatal("nothing logged")
	}
	for _, text := range texts {
		for _, secret := range []string{testSecret, "access-1", "access-2", "refresh-1", "refresh-2"} {
			if strings.Contains(text, secret) {
				t.Errorf("%q contains %q", text, secret)
			}
		}
	}
	if !strings.Contains(c.String(), testClientID) || !strings.Contains(c.String(), "credentials: set") {
		t.Errorf("String() = %q", c.String())
	}
}

func stringify(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestBasePath: a base URL with a path prefix keeps it.
func TestBasePath(t *testing.T) {
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.Path
		writeEnvelope(w, 404, CodeNotFound, "", nil)
	}))
	defer srv.Close()
	c, err := New(srv.URL+"/gw/", WithCredentials("a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Authenticate(context.Background())
	if got != "/gw"+PathToken {
		t.Errorf("path %q, want %q", got, "/gw"+PathToken)
	}
}
