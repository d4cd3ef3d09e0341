package partnerclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Every call below returns, on failure, an *Error (classify it with Classify; it matches
// ErrNotFound, ErrValidation, ErrUnauthorized or ErrRateLimited where they apply), or an
// error wrapping ErrMissingCredentials when the client has no credentials.

const defaultPageSize = 25

// ListProducts returns a page of the licences (PBX instances) of one product
// (Query Product List). PageNo defaults to 1 and PageSize to 25.
func (c *Client) ListProducts(ctx context.Context, p ListProductsParams) (Page[Product], error) {
	q := url.Values{}
	q.Set("productId", strconv.FormatInt(p.ProductID, 10))
	q.Set("pageNo", strconv.Itoa(orDefault(p.PageNo, 1)))
	q.Set("pageSize", strconv.Itoa(orDefault(p.PageSize, defaultPageSize)))
	return get(ctx, c, EndpointProductList, PathProductList, q, decodeProductPage)
}

// ProductDetails returns one licence by its SN (Get Product Details). An unknown SN
// gives an error matching ErrNotFound.
func (c *Client) ProductDetails(ctx context.Context, productID int64, productNo string) (Product, error) {
	return get(ctx, c, EndpointProductDetails, PathProductDetails, productQuery(productID, productNo), decodeProduct)
}

// PurchaseInfo returns the plans and services that can be bought for a product (Query
// Available Subscription / Trial Plans and Services). productNo is optional.
func (c *Client) PurchaseInfo(ctx context.Context, productID int64, productNo string) (PurchaseInfo, error) {
	q := url.Values{}
	q.Set("productId", strconv.FormatInt(productID, 10))
	if productNo != "" {
		q.Set("productNo", productNo)
	}
	return get(ctx, c, EndpointPurchaseInfo, PathPurchaseInfo, q, decodePurchaseInfo)
}

// BillingContacts returns the account's billing contacts (Query Billing Contact List).
func (c *Client) BillingContacts(ctx context.Context) ([]BillingContact, error) {
	return get(ctx, c, EndpointBillingContacts, PathBillingContacts, nil, decodeBillingContacts)
}

// SubordinateUsers returns the account's customers (Query Subordinate User List).
func (c *Client) SubordinateUsers(ctx context.Context) ([]SubordinateUser, error) {
	return get(ctx, c, EndpointSubordinateUsers, PathSubordinateUsers, nil, decodeSubordinateUsers)
}

// CreateOrder places an order (Create an Order). It has a side effect and may spend
// money: never repeat it after an error that Classify calls OutcomeUnknown without
// looking the order up first (ListOrders, OrderDetails). Only a documented refusal is
// OutcomePermanent; an undocumented code in a 2xx answer is OutcomeUnknown (the order
// may exist).
//
// A success whose result has no orderNo is returned as it is, without an error, with
// OrderNo == "" (and whatever else the result held): the partner says the order was
// placed but not which one. The caller must then reconcile — find the order with
// ListOrders and OrderDetails — and never treat it as placed-and-known nor send it again.
func (c *Client) CreateOrder(ctx context.Context, req OrderRequest) (OrderResult, error) {
	return post(ctx, c, EndpointCreateOrder, PathCreateOrder, req, decodeOrderResult)
}

// ListOrders returns a page of orders, newest first (Query Order List). PageNo defaults
// to 1 and PageSize to 25; Sort is sent as "sort" when set.
func (c *Client) ListOrders(ctx context.Context, p ListOrdersParams) (Page[OrderSummary], error) {
	q := url.Values{}
	q.Set("pageNo", strconv.Itoa(orDefault(p.PageNo, 1)))
	q.Set("pageSize", strconv.Itoa(orDefault(p.PageSize, defaultPageSize)))
	if p.Sort != "" {
		q.Set("sort", p.Sort)
	}
	return get(ctx, c, EndpointOrderList, PathOrderList, q, decodeOrderPage)
}

// OrderDetails returns one order by order number or order ID (Get Order Details). An
// empty idOrNo returns an error wrapping ErrValidation without calling the API.
func (c *Client) OrderDetails(ctx context.Context, idOrNo string) (OrderDetails, error) {
	idOrNo = strings.TrimSpace(idOrNo)
	if idOrNo == "" {
		return OrderDetails{}, fmt.Errorf("partner %s: empty order ID or number: %w", EndpointOrderDetails, ErrValidation)
	}
	return get(ctx, c, EndpointOrderDetails, PathOrderDetailsPrefix+url.PathEscape(idOrNo), nil, decodeOrderDetails)
}

// AutoRenewStatus reports whether auto-renewal is on for a licence (Query Auto Renewal
// Status).
func (c *Client) AutoRenewStatus(ctx context.Context, productID int64, productNo string) (bool, error) {
	return get(ctx, c, EndpointAutoRenewStatus, PathAutoRenewStatus, productQuery(productID, productNo), decodeAutoRenewStatus)
}

// EnableAutoRenewal turns auto-renewal on for a licence's plan (Enable Auto-renewal) and
// returns the server's Boolean result. It has a side effect; check AutoRenewStatus
// before repeating it after an OutcomeUnknown error.
func (c *Client) EnableAutoRenewal(ctx context.Context, req AutoRenewalRequest) (bool, error) {
	return post(ctx, c, EndpointEnableAutoRenewal, PathEnableAutoRenewal, req, decodeEnableAutoRenewal)
}

// ActivationCode returns the activation code of a P-Series Software Edition licence
// (Query Activation Code).
func (c *Client) ActivationCode(ctx context.Context, productID int64, productNo string) (ActivationCode, error) {
	return get(ctx, c, EndpointActivationCode, PathActivationCode, productQuery(productID, productNo), decodeActivationCode)
}

func productQuery(productID int64, productNo string) url.Values {
	q := url.Values{}
	q.Set("productNo", productNo)
	q.Set("productId", strconv.FormatInt(productID, 10))
	return q
}

func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

func get[T any](ctx context.Context, c *Client, ep Endpoint, path string, q url.Values, decode func(json.RawMessage, driftSink) (T, error)) (T, error) {
	resp, err := c.call(ctx, request{ep: ep, method: http.MethodGet, path: path, query: q})
	if err != nil {
		var zero T
		return zero, err
	}
	return decodeResult(c, ep, resp, decode)
}

func post[T any](ctx context.Context, c *Client, ep Endpoint, path string, body any, decode func(json.RawMessage, driftSink) (T, error)) (T, error) {
	var zero T
	b, err := json.Marshal(body)
	if err != nil {
		return zero, fmt.Errorf("partner %s: encode body: %w", ep, err)
	}
	resp, err := c.call(ctx, request{ep: ep, method: http.MethodPost, path: path, body: b, contentType: "application/json"})
	if err != nil {
		return zero, err
	}
	return decodeResult(c, ep, resp, decode)
}
