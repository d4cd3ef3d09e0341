package partnertest

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// The simulator's routes, written from the Partner Portal API guide. They are deliberately not
// taken from partnerclient, so that a misspelt path in the client fails against the simulator
// instead of being copied into it.
const (
	pathToken              = "/auth/openapi/v1/oauth/token"
	pathProductList        = "/product/openapi/instance_product/v1/client/instance_product_list"
	pathProductDetails     = "/product/openapi/instance_product/v1/detail"
	pathPurchaseInfo       = "/pricing/openapi/purchase/v1/purchase_product_info"
	pathBillingContacts    = "/user/openapi/user/v1/client/billing_contact_list"
	pathSubordinateUsers   = "/user/openapi/user/v1/client/partner_list"
	pathCreateOrder        = "/order/openapi/order/v1/save"
	pathOrderList          = "/order/openapi/order/v1/page"
	pathOrderDetailsPrefix = "/order/openapi/order/v1/get/" // + order number or order ID
	pathAutoRenewStatus    = "/order/openapi/order/v1/check/existed_auto_renew"
	pathEnableAutoRenewal  = "/product/openapi/instance_subscription/v1/active"
	pathActivationCode     = "/product/openapi/instance_product/v1/activation_code"
)

// The wire types below are the simulator's own encoding of every request and response body.
// None of them comes from partnerclient: a JSON tag or a type that the client gets wrong must
// fail against the simulator.

// envelope is the body of every answer. status is always present.
type envelope struct {
	Code          string `json:"code"`
	DetailMessage string `json:"detailMessage"`
	RequestID     string `json:"requestId"`
	Result        any    `json:"result"`
	Status        int    `json:"status"`
}

// pageJSON is the documented paging wrapper of the list endpoints.
type pageJSON[T any] struct {
	Count     int `json:"count"`
	PageNo    int `json:"pageNo"`
	PageSize  int `json:"pageSize"`
	Results   []T `json:"results"`
	Total     int `json:"total"`
	TotalPage int `json:"totalPage"`
}

// page cuts page pageNo out of items. shift moves the start of every page after the first that
// many items back (at least to the first item), as when new items arrive at the front of the
// list between two page requests; the totals do not change.
func page[T any](items []T, pageNo, pageSize, shift int) pageJSON[T] {
	total := len(items)
	p := pageJSON[T]{
		Count:    total,
		PageNo:   pageNo,
		PageSize: pageSize,
		Results:  []T{},
		Total:    total,
	}
	if total > 0 {
		p.TotalPage = (total-1)/pageSize + 1
	}
	start := (pageNo - 1) * pageSize
	if pageNo > 1 {
		start = max(0, start-shift)
	}
	if start < total {
		p.Results = items[start:min(total, start+pageSize)]
	}
	return p
}

// wireID is a numeric ID in a request body: documented as Integer or Long, accepted also as a
// numeric string (as a Java back end would coerce it). "" and null are 0.
type wireID int64

var errNotInteger = errors.New("not an integer")

func (id *wireID) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*id = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		if s = strings.TrimSpace(s); s == "" {
			*id = 0
			return nil
		}
		b = []byte(s)
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return errNotInteger
	}
	*id = wireID(v)
	return nil
}

func (id wireID) String() string { return strconv.FormatInt(int64(id), 10) }

// wireString is a String field of a request body, accepted also as a JSON number.
type wireString string

func (s *wireString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = wireString(v)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return err
		}
		*s = wireString(n)
	}
	return nil
}

// flag01 is an Integer 0/1 flag (planAutoRenewal, serviceAutoRenewal); asBool encodes it as
// JSON true/false instead, for Hostile.AutoRenewalAsBool.
type flag01 struct {
	on, asBool bool
}

func (f flag01) MarshalJSON() ([]byte, error) {
	switch {
	case f.asBool && f.on:
		return []byte("true"), nil
	case f.asBool:
		return []byte("false"), nil
	case f.on:
		return []byte("1"), nil
	default:
		return []byte("0"), nil
	}
}

// tokenJSON is the documented Token_Details result.
type tokenJSON struct {
	ExpiresIn    string `json:"expiresIn"`
	RefreshToken string `json:"refreshToken"`
	Token        string `json:"token"`
	TokenHead    string `json:"tokenHead"`
}

// productJSON is an item of Query Product List (assumed: the fields of Get Product Details) and
// the result of Get Product Details, field for field as the Get Product Details page documents
// them.
type productJSON struct {
	ActivationCode        string               `json:"activationCode"`
	ActivationStatus      string               `json:"activationStatus"`
	Comment               string               `json:"comment"`
	CreateTime            int64                `json:"createTime"`
	CurrentPlan           string               `json:"currentPlan"`
	CurrentPlanExpireDate string               `json:"currentPlanExpireDate"`
	CustomerEmail         string               `json:"customerEmail"`
	EndUserInfo           endUserJSON          `json:"endUserInfo"`
	Model                 string               `json:"model"`
	NextPlan              string               `json:"nextPlan"`
	NextPlanExpireDate    string               `json:"nextPlanExpireDate"`
	NextPlanStartDate     string               `json:"nextPlanStartDate"`
	PartnerEmail          string               `json:"partnerEmail"`
	PlanAutoRenewal       flag01               `json:"planAutoRenewal"`
	PlanExpireDate        int64                `json:"planExpireDate"`
	PlanID                string               `json:"planId"`
	PlanName              string               `json:"planName"`
	PlanStatus            string               `json:"planStatus"`
	ProductAdminEmail     string               `json:"productAdminEmail"`
	ProductNo             string               `json:"productNo"`
	Quantity              string               `json:"quantity"`
	Referrer              string               `json:"referrer"`
	ServiceList           []productServiceJSON `json:"serviceList"`
	URL                   string               `json:"url"`
	YeastarID             string               `json:"yeastarId"`
}

// endUserJSON is the documented Enduser_Info.
type endUserJSON struct {
	Address     string `json:"address"`
	CompanyName string `json:"companyName"`
	ContactName string `json:"contactName"`
	Email       string `json:"email"`
}

// productServiceJSON is the documented Service_Info of Get Product Details. servicePeriod is
// returned only for P-Series Software Edition.
type productServiceJSON struct {
	Quantity           string `json:"quantity"`
	ServiceAutoRenewal flag01 `json:"serviceAutoRenewal"`
	ServiceExpireDate  int64  `json:"serviceExpireDate"`
	ServiceID          string `json:"serviceId"`
	ServiceName        string `json:"serviceName"`
	ServicePeriod      *int   `json:"servicePeriod,omitempty"`
	ServiceStatus      string `json:"serviceStatus"`
}

// purchaseInfoJSON is the result of Query Available Subscription / Trial Plans and Services
// (a shape assumed where the guide is cut off).
type purchaseInfoJSON struct {
	OfferingID  string        `json:"offeringId"`
	ProductID   int64         `json:"productId"`
	ProductName string        `json:"productName"`
	PlanList    []planJSON    `json:"planList"`
	ServiceList []serviceJSON `json:"serviceList"`
}

type planJSON struct {
	PlanID       string `json:"planId"`
	PlanName     string `json:"planName"`
	PurchaseType string `json:"purchaseType"`
	BillingModel string `json:"billingModel"`
	BillingCycle string `json:"billingCycle"`
	MinQuantity  int    `json:"minQuantity"`
	MaxQuantity  int    `json:"maxQuantity"`
}

type serviceJSON struct {
	ServiceID         string   `json:"serviceId"`
	ServiceName       string   `json:"serviceName"`
	PurchaseType      string   `json:"purchaseType"`
	ConnectionPlanIDs []string `json:"connectionPlanIds"`
}

// contactJSON is the documented Contact_Info of Query Billing Contact List.
type contactJSON struct {
	BillingContactID string `json:"billingContactId"`
	City             string `json:"city"`
	Company          string `json:"company"`
	Country          string `json:"country"`
	EmailAddress     string `json:"emailAddress"`
	FirstName        string `json:"firstName"`
	LastName         string `json:"lastName"`
	PhoneNumber      string `json:"phoneNumber"`
	Remark           string `json:"remark"`
	StateProvince    string `json:"stateProvince"`
	Street           string `json:"street"`
	TaxNum           string `json:"taxNum"`
	ZipCode          string `json:"zipCode"`
}

// userJSON is the documented User_Info of Query Subordinate User List.
type userJSON struct {
	City          string `json:"city"`
	Company       string `json:"company"`
	Country       string `json:"country"`
	Email         string `json:"email"`
	FirstName     string `json:"firstName"`
	LastName      string `json:"lastName"`
	PartnerID     string `json:"partnerId"`
	PhoneNumber   string `json:"phoneNumber"`
	Remark        string `json:"remark"`
	StateProvince string `json:"stateProvince"`
	Street        string `json:"street"`
	TaxNum        string `json:"taxNum"`
	UserType      string `json:"userType"`
	ZipCode       string `json:"zipCode"`
}

// autoRenewStatusJSON is the result of Query Auto Renewal Status.
type autoRenewStatusJSON struct {
	AutoRenew bool `json:"autoRenew"`
}

// autoRenewalBody is the body of Enable Auto-renewal; productId is documented as a String and
// accepted as a number too.
type autoRenewalBody struct {
	ProductNo       string     `json:"productNo"`
	ProductID       wireString `json:"productId"`
	PlanOrServiceID wireID     `json:"planOrServiceId"`
}

// codeInfoJSON is the documented Code_Info of Query Activation Code.
type codeInfoJSON struct {
	Code         string `json:"code"`
	GenerateTime int64  `json:"generateTime"`
}

// orderBody is the body of Create an Order; IDs are accepted as numbers or strings.
type orderBody struct {
	OperationType string          `json:"operationType"`
	ProductID     wireID          `json:"productId"`
	ProductNo     string          `json:"productNo"`
	PartnerID     wireID          `json:"partnerId"`
	AssignID      wireID          `json:"assignId"`
	BillingID     wireID          `json:"billingId"`
	PONumber      string          `json:"poNumber"`
	ServiceList   []orderLineBody `json:"serviceList"`
}

// orderLineBody is one Service_List item of Create an Order, with the names the tutorials use.
type orderLineBody struct {
	ServiceType      string `json:"serviceType"`
	ServiceID        wireID `json:"serviceId"`
	ConnectionPlanID wireID `json:"connectionPlanId"`
	Quantity         int    `json:"quantity"`
	PurchaseType     string `json:"purchaseType"`
	BillingModel     string `json:"billingModel"`
	BillingCycle     string `json:"billingCycle"`
	MultiCycle       int    `json:"multiCycle"`
}

// orderResultJSON is the result of Create an Order (the commercial-licence tutorial).
// Hostile.OrderNoOrderNoRate answers it without orderNo, hence the pointer.
type orderResultJSON struct {
	InstanceID    string  `json:"instanceId"`
	OrderNo       *string `json:"orderNo,omitempty"`
	OrderStatus   string  `json:"orderStatus"`
	ProductNo     string  `json:"productNo"`
	TransactionNo string  `json:"transactionNo"`
}

// orderSummaryJSON is an item of Query Order List (fields assumed beyond the visible ones). Hostile.OrderListWithoutPONumber
// leaves poNumber out, hence the pointer.
type orderSummaryJSON struct {
	CreateTime        int64   `json:"createTime"`
	CurrencyCode      string  `json:"currencyCode"`
	CustomReferenceNo string  `json:"customReferenceNo"`
	ID                string  `json:"id"`
	InvoiceNo         string  `json:"invoiceNo"`
	OperationType     string  `json:"operationType"`
	OrderNo           string  `json:"orderNo"`
	OrderStatus       string  `json:"orderStatus"`
	PONumber          *string `json:"poNumber,omitempty"`
	ProductID         int64   `json:"productId"`
	ProductNo         string  `json:"productNo"`
}

// orderDetailsJSON is the result of Get Order Details (assumed beyond basicInformation).
type orderDetailsJSON struct {
	BasicInformation   basicInfoJSON   `json:"basicInformation"`
	BillingInformation billingInfoJSON `json:"billingInformation"`
	OrderInformation   orderInfoJSON   `json:"orderInformation"`
	OrderSummary       orderSumJSON    `json:"orderSummary"`
}

// basicInfoJSON is the documented Basic_Info; productId is a String there.
type basicInfoJSON struct {
	ProductID   string `json:"productId"`
	ProductName string `json:"productName"`
	ProductNo   string `json:"productNo"`
}

type billingInfoJSON struct {
	BillingContactID string `json:"billingContactId"`
	Company          string `json:"company"`
	EmailAddress     string `json:"emailAddress"`
}

type orderInfoJSON struct {
	CreateTime        int64  `json:"createTime"`
	CurrencyCode      string `json:"currencyCode"`
	CustomReferenceNo string `json:"customReferenceNo"`
	ID                string `json:"id"`
	InstanceID        string `json:"instanceId"`
	InvoiceNo         string `json:"invoiceNo"`
	OperationType     string `json:"operationType"`
	OrderNo           string `json:"orderNo"`
	OrderStatus       string `json:"orderStatus"`
	PONumber          string `json:"poNumber"`
	TransactionNo     string `json:"transactionNo"`
}

type orderSumJSON struct {
	ServiceList []orderLineJSON `json:"serviceList"`
}

type orderLineJSON struct {
	BillingCycle     string `json:"billingCycle"`
	BillingModel     string `json:"billingModel"`
	ConnectionPlanID string `json:"connectionPlanId,omitempty"`
	MultiCycle       int    `json:"multiCycle"`
	PurchaseType     string `json:"purchaseType"`
	Quantity         int    `json:"quantity"`
	ServiceID        string `json:"serviceId"`
	ServiceName      string `json:"serviceName"`
	ServiceType      string `json:"serviceType"`
}

// Documented values of the order body and the order views, written here rather than taken from
// partnerclient for the same reason as the paths.
const (
	opPurchasePlan        = "purchase_plan"
	serviceTypePlan       = "plan"
	serviceTypeService    = "service"
	purchaseTypePurchase  = "purchase"
	billingModelRecurring = "recurring"
	billingCycleAnnually  = "annually"
	statusSucceed         = "succeed"
)

// statusSubscribing is the documented planStatus of a plan being paid by subscription; the
// simulator uses it for plans and services alike.
const statusSubscribing = "subscribing"

// decodeBody decodes a JSON request body into v, a pointer to a struct, reading only the keys
// spelt exactly as v's json tags. encoding/json alone matches keys case-insensitively, so
// "billingID" would fill billingId; the portal's JSON binding is case-sensitive, and a client
// that misspells a key must be told the documented key is missing.
func decodeBody(body []byte, v any) error {
	var raw json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return err
	}
	exact, err := exactKeys(raw, reflect.TypeOf(v).Elem())
	if err != nil {
		return err
	}
	return json.Unmarshal(exact, v)
}

// exactKeys drops from raw, recursively through objects and arrays of structs, every object
// key that is not exactly the json name of a field of t.
func exactKeys(raw json.RawMessage, t reflect.Type) (json.RawMessage, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType) {
			return raw, nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return raw, nil // not an object: json.Unmarshal reports the type error
		}
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" {
				fields[name] = f.Type
			}
		}
		out := make(map[string]json.RawMessage, len(obj))
		for k, v := range obj {
			ft, ok := fields[k]
			if !ok {
				continue
			}
			v, err := exactKeys(v, ft)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return json.Marshal(out)
	case reflect.Slice:
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil || items == nil {
			return raw, nil // not an array: json.Unmarshal reports the type error
		}
		for i, it := range items {
			v, err := exactKeys(it, t.Elem())
			if err != nil {
				return nil, err
			}
			items[i] = v
		}
		return json.Marshal(items)
	}
	return raw, nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()
