package partnerclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Endpoint paths of the Yeastar Partner Portal OpenAPI used by fulfil (see docs/partner-api.md).
const (
	PathToken              = "/auth/openapi/v1/oauth/token"
	PathProductList        = "/product/openapi/instance_product/v1/client/instance_product_list"
	PathProductDetails     = "/product/openapi/instance_product/v1/detail"
	PathPurchaseInfo       = "/pricing/openapi/purchase/v1/purchase_product_info"
	PathBillingContacts    = "/user/openapi/user/v1/client/billing_contact_list"
	PathSubordinateUsers   = "/user/openapi/user/v1/client/partner_list"
	PathCreateOrder        = "/order/openapi/order/v1/save"
	PathOrderList          = "/order/openapi/order/v1/page"
	PathOrderDetailsPrefix = "/order/openapi/order/v1/get/" // + order number or order ID
	PathAutoRenewStatus    = "/order/openapi/order/v1/check/existed_auto_renew"
	PathEnableAutoRenewal  = "/product/openapi/instance_subscription/v1/active"
	PathActivationCode     = "/product/openapi/instance_product/v1/activation_code"
)

// Endpoint names one API call; it labels errors, metrics and the simulator's fault knobs.
type Endpoint string

// Endpoints.
const (
	EndpointToken             Endpoint = "token"
	EndpointProductList       Endpoint = "product_list"
	EndpointProductDetails    Endpoint = "product_details"
	EndpointPurchaseInfo      Endpoint = "purchase_product_info"
	EndpointBillingContacts   Endpoint = "billing_contact_list"
	EndpointSubordinateUsers  Endpoint = "subordinate_user_list"
	EndpointCreateOrder       Endpoint = "create_order"
	EndpointOrderList         Endpoint = "order_list"
	EndpointOrderDetails      Endpoint = "order_details"
	EndpointAutoRenewStatus   Endpoint = "auto_renew_status"
	EndpointEnableAutoRenewal Endpoint = "enable_auto_renewal"
	EndpointActivationCode    Endpoint = "activation_code"
)

// AllEndpoints lists every endpoint, in saga order.
var AllEndpoints = []Endpoint{
	EndpointToken, EndpointProductList, EndpointProductDetails, EndpointPurchaseInfo,
	EndpointBillingContacts, EndpointSubordinateUsers, EndpointCreateOrder, EndpointOrderList,
	EndpointOrderDetails, EndpointAutoRenewStatus, EndpointEnableAutoRenewal, EndpointActivationCode,
}

// SideEffect reports whether a call to e changes state on the partner side, so that a call
// whose answer was lost has an unknown outcome instead of being safely repeatable.
func (e Endpoint) SideEffect() bool {
	return e == EndpointCreateOrder || e == EndpointEnableAutoRenewal
}

// ID is a numeric partner identifier (plan, service, billing contact, partner, order ID).
// It decodes from a JSON number or string and never passes through float64. It marshals as
// a JSON number; use String() where the API documents a String.
type ID int64

// UnmarshalJSON accepts 123, "123", "" and null (the last two as 0).
func (id *ID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*id = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		s, err := unquote(b)
		if err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
		if len(b) == 0 {
			*id = 0
			return nil
		}
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("partnerclient: id %s is not an int64", b)
	}
	*id = ID(v)
	return nil
}

// String returns the decimal text of id.
func (id ID) String() string { return strconv.FormatInt(int64(id), 10) }

// ParseID parses decimal text as an ID.
func ParseID(s string) (ID, error) {
	v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("partnerclient: id %q is not an int64", s)
	}
	return ID(v), nil
}

// Millis is a time sent as milliseconds since the epoch (number or numeric string).
type Millis int64

// UnmarshalJSON accepts a number, a numeric string, "" and null.
func (m *Millis) UnmarshalJSON(b []byte) error {
	var id ID
	if err := id.UnmarshalJSON(b); err != nil {
		return err
	}
	*m = Millis(id)
	return nil
}

// Time converts m to a time.Time (zero for 0).
func (m Millis) Time() time.Time {
	if m == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(m))
}

// FromTime converts t to Millis.
func FromTime(t time.Time) Millis { return Millis(t.UnixMilli()) }

// unquote decodes the JSON string literal b. A literal without escapes, control characters
// or invalid UTF-8 (nearly every one) is sliced directly instead of taking a second pass of
// json.Unmarshal, which the partner's numeric IDs and codes would otherwise cost per field.
func unquote(b []byte) (string, error) {
	if n := len(b); n >= 2 && b[0] == '"' && b[n-1] == '"' {
		in := b[1 : n-1]
		plain := true
		for _, c := range in {
			if c == '\\' || c == '"' || c < 0x20 {
				plain = false
				break
			}
		}
		if plain && utf8.Valid(in) {
			return string(in), nil
		}
	}
	var s string
	err := json.Unmarshal(b, &s)
	return s, err
}

// Flexible string: accepts a JSON string or number (e.g. quantity "20" vs 20).
type FlexString string

// UnmarshalJSON accepts a string, a number, and null.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = ""
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		v, err := unquote(b)
		if err != nil {
			return err
		}
		*s = FlexString(v)
		return nil
	}
	*s = FlexString(b)
	return nil
}

// Page is the paging wrapper of list endpoints.
type Page[T any] struct {
	Count     int `json:"count"`
	PageNo    int `json:"pageNo"`
	PageSize  int `json:"pageSize"`
	Results   []T `json:"results"`
	Total     int `json:"total"`
	TotalPage int `json:"totalPage"`
}

// Token is the result of the token calls. Its String method never prints the secrets.
type Token struct {
	AccessToken  string `json:"token"`
	RefreshToken string `json:"refreshToken"`
	TokenHead    string `json:"tokenHead"`
	ExpiresIn    string `json:"expiresIn"` // seconds, as a string
}

// String redacts the token values.
func (t Token) String() string {
	return fmt.Sprintf("Token{expiresIn:%s, token:[redacted]}", t.ExpiresIn)
}

// GoString redacts the token values.
func (t Token) GoString() string { return t.String() }

// ListProductsParams selects a page of Query Product List.
type ListProductsParams struct {
	ProductID int64
	PageNo    int // default 1
	PageSize  int // default 25
}

// Product is an item of Query Product List and the result of Get Product Details. The saga
// relies on ProductNo only; a value of another type in any other field is tolerated (see
// Drift). PlanAutoRenewal and ServiceAutoRenewal are documented Integers, 1 enabled and 0
// disabled; true/false and "1"/"0" are taken too.
type Product struct {
	ProductNo        string           `json:"productNo" partner:"strict"`
	ActivationCode   string           `json:"activationCode"`
	ActivationStatus string           `json:"activationStatus"`
	Comment          string           `json:"comment"`
	CreateTime       Millis           `json:"createTime"`
	PlanID           ID               `json:"planId"`
	PlanName         string           `json:"planName"`
	PlanStatus       string           `json:"planStatus"`
	PlanExpireDate   Millis           `json:"planExpireDate"`
	PlanAutoRenewal  int              `json:"planAutoRenewal" partner:"flag"`
	Quantity         FlexString       `json:"quantity"`
	CustomerEmail    string           `json:"customerEmail"`
	URL              string           `json:"url"`
	YeastarID        string           `json:"yeastarId"`
	ServiceList      []ProductService `json:"serviceList,omitempty"`
}

// ProductService is a service attached to a product.
type ProductService struct {
	ServiceID          ID         `json:"serviceId"`
	ServiceName        string     `json:"serviceName"`
	Quantity           FlexString `json:"quantity"`
	ServiceAutoRenewal int        `json:"serviceAutoRenewal" partner:"flag"`
	ServiceExpireDate  Millis     `json:"serviceExpireDate"`
	ServiceStatus      string     `json:"serviceStatus"`
}

// PurchaseInfo is the result of Query Available Subscription / Trial Plans and Services.
type PurchaseInfo struct {
	OfferingID  FlexString    `json:"offeringId"`
	ProductID   ID            `json:"productId"`
	ProductName string        `json:"productName"`
	Plans       []PlanInfo    `json:"planList" partner:"strict"`
	Services    []ServiceInfo `json:"serviceList" partner:"strict"`
}

// PlanInfo is a plan that can be ordered.
type PlanInfo struct {
	PlanID       ID     `json:"planId" partner:"strict"`
	PlanName     string `json:"planName" partner:"strict"`
	PurchaseType string `json:"purchaseType"`
	BillingModel string `json:"billingModel"`
	BillingCycle string `json:"billingCycle"`
	MinQuantity  int    `json:"minQuantity" partner:"strict"`
	MaxQuantity  int    `json:"maxQuantity" partner:"strict"`
}

// ServiceInfo is a service that can be ordered with the plans in ConnectionPlanIDs.
type ServiceInfo struct {
	ServiceID         ID     `json:"serviceId" partner:"strict"`
	ServiceName       string `json:"serviceName" partner:"strict"`
	PurchaseType      string `json:"purchaseType"`
	ConnectionPlanIDs []ID   `json:"connectionPlanIds" partner:"strict"`
}

// BillingContact is an item of Query Billing Contact List.
type BillingContact struct {
	BillingContactID ID     `json:"billingContactId" partner:"strict"`
	EmailAddress     string `json:"emailAddress" partner:"strict"`
	Company          string `json:"company"`
	FirstName        string `json:"firstName"`
	LastName         string `json:"lastName"`
	Country          string `json:"country"`
}

// SubordinateUser is an item of Query Subordinate User List.
type SubordinateUser struct {
	PartnerID ID     `json:"partnerId" partner:"strict"`
	Email     string `json:"email" partner:"strict"`
	Company   string `json:"company"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
	UserType  string `json:"userType"`
	Country   string `json:"country"`
}

// OrderRequest is the body of Create an Order.
type OrderRequest struct {
	OperationType string      `json:"operationType"`
	ProductID     int64       `json:"productId"`
	ProductNo     string      `json:"productNo,omitempty"`
	PartnerID     ID          `json:"partnerId,omitempty"`
	AssignID      string      `json:"assignId,omitempty"`
	BillingID     ID          `json:"billingId"`
	PONumber      string      `json:"poNumber,omitempty"`
	ServiceList   []OrderLine `json:"serviceList"`
}

// OrderLine is one plan or service line of an order. Reading an order back, the saga
// compares its type, ID, quantity and multiCycle.
type OrderLine struct {
	ServiceType      string `json:"serviceType" partner:"strict"`
	ServiceID        ID     `json:"serviceId" partner:"strict"`
	ConnectionPlanID ID     `json:"connectionPlanId,omitempty"`
	Quantity         int    `json:"quantity,omitempty" partner:"strict"`
	PurchaseType     string `json:"purchaseType"`
	BillingModel     string `json:"billingModel"`
	BillingCycle     string `json:"billingCycle"`
	MultiCycle       int    `json:"multiCycle" partner:"strict"`
}

// Fixed values of a commercial P-Series Software Edition purchase.
const (
	OperationPurchasePlan = "purchase_plan"
	ServiceTypePlan       = "plan"
	ServiceTypeService    = "service"
	PurchaseTypePurchase  = "purchase"
	BillingModelRecurring = "recurring"
	BillingCycleAnnually  = "annually"
)

// Order statuses.
const (
	OrderSucceed    = "succeed"
	OrderFailed     = "failed"
	OrderPending    = "pending"
	OrderInvalid    = "invalid"
	OrderCancelled  = "cancelled"
	OrderRefunded   = "refunded"
	OrderConfirming = "confirming"
)

// OrderResult is the result of Create an Order. OrderNo may be empty: see CreateOrder.
type OrderResult struct {
	InstanceID    FlexString `json:"instanceId"`
	OrderNo       string     `json:"orderNo" partner:"strict"`
	OrderStatus   string     `json:"orderStatus" partner:"strict"`
	ProductNo     string     `json:"productNo" partner:"strict"`
	TransactionNo string     `json:"transactionNo"`
}

// ListOrdersParams selects a page of Query Order List (newest first).
type ListOrdersParams struct {
	PageNo   int    // default 1
	PageSize int    // default 25
	Sort     string // sent as "sort" when not empty
}

// OrderSummary is an item of Query Order List.
type OrderSummary struct {
	ID                ID     `json:"id" partner:"strict"`
	OrderNo           string `json:"orderNo" partner:"strict"`
	OrderStatus       string `json:"orderStatus" partner:"strict"`
	CreateTime        Millis `json:"createTime" partner:"strict"`
	CurrencyCode      string `json:"currencyCode"`
	CustomReferenceNo string `json:"customReferenceNo"`
	InvoiceNo         string `json:"invoiceNo"`
	PONumber          string `json:"poNumber" partner:"strict"`
	ProductID         ID     `json:"productId"`
	ProductNo         string `json:"productNo"`
	OperationType     string `json:"operationType"`
}

// OrderDetails is the result of Get Order Details.
type OrderDetails struct {
	Basic   OrderBasicInfo   `json:"basicInformation" partner:"strict"`
	Order   OrderInfo        `json:"orderInformation" partner:"strict"`
	Billing OrderBillingInfo `json:"billingInformation" partner:"strict"`
	Summary OrderSumInfo     `json:"orderSummary" partner:"strict"`
}

// OrderBasicInfo is Get Order Details' basicInformation.
type OrderBasicInfo struct {
	ProductID   ID     `json:"productId" partner:"strict"`
	ProductName string `json:"productName"`
	ProductNo   string `json:"productNo" partner:"strict"`
}

// OrderInfo is Get Order Details' orderInformation.
type OrderInfo struct {
	ID            ID         `json:"id" partner:"strict"`
	OrderNo       string     `json:"orderNo" partner:"strict"`
	OrderStatus   string     `json:"orderStatus" partner:"strict"`
	PONumber      string     `json:"poNumber" partner:"strict"`
	CreateTime    Millis     `json:"createTime"`
	OperationType string     `json:"operationType"`
	TransactionNo string     `json:"transactionNo"`
	InstanceID    FlexString `json:"instanceId"`
}

// OrderBillingInfo is Get Order Details' billingInformation.
type OrderBillingInfo struct {
	BillingContactID ID     `json:"billingContactId" partner:"strict"`
	EmailAddress     string `json:"emailAddress"`
}

// OrderSumInfo is Get Order Details' orderSummary.
type OrderSumInfo struct {
	ServiceList []OrderLine `json:"serviceList" partner:"strict"`
}

// AutoRenewalRequest is the body of Enable Auto-renewal.
type AutoRenewalRequest struct {
	ProductNo       string `json:"productNo"`
	ProductID       string `json:"productId"` // documented as String
	PlanOrServiceID ID     `json:"planOrServiceId"`
}

// ActivationCode is the result of Query Activation Code.
type ActivationCode struct {
	Code         string `json:"code" partner:"strict"`
	GenerateTime Millis `json:"generateTime"`
}

// The checks of the fields the saga relies on. A decoder that finds one missing fails as an
// undecodable answer (retryable for a lookup, unknown for a side-effecting call), instead of
// handing the saga a zero ID or an empty name.

func (p Product) validate() error {
	if strings.TrimSpace(p.ProductNo) == "" {
		return errors.New("product without productNo")
	}
	return nil
}

func (p PurchaseInfo) validate() error {
	if len(p.Plans) == 0 {
		// A product on sale has plans; an answer without any has lost its planList, and the
		// saga must not tell the buyer that the plan does not exist.
		return errors.New("no plans: planList is missing or empty")
	}
	for i, pl := range p.Plans {
		if pl.PlanID == 0 || strings.TrimSpace(pl.PlanName) == "" {
			return fmt.Errorf("planList[%d]: a plan needs planId and planName", i)
		}
	}
	for i, sv := range p.Services {
		if sv.ServiceID == 0 || strings.TrimSpace(sv.ServiceName) == "" {
			return fmt.Errorf("serviceList[%d]: a service needs serviceId and serviceName", i)
		}
	}
	return nil
}

func (b BillingContact) validate() error {
	if b.BillingContactID == 0 {
		return errors.New("billing contact without billingContactId")
	}
	return nil
}

func (u SubordinateUser) validate() error {
	if u.PartnerID == 0 || strings.TrimSpace(u.Email) == "" {
		return errors.New("subordinate user without partnerId or email")
	}
	return nil
}

func (o OrderSummary) validate() error {
	if o.ID == 0 && strings.TrimSpace(o.OrderNo) == "" {
		return errors.New("order without id or orderNo")
	}
	return nil
}

func (d OrderDetails) validate() error {
	if d.Order.ID == 0 && strings.TrimSpace(d.Order.OrderNo) == "" {
		return errors.New("order details without orderInformation.orderNo or id")
	}
	return nil
}
