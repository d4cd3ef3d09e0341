package workflow

import (
	"context"

	"github.com/fulfil/fulfil/partnerclient"
)

// Partner is the subset of the Partner Portal API the saga calls. *partnerclient.Client
// implements it; errors are classified with partnerclient.Classify.
type Partner interface {
	ListProducts(ctx context.Context, p partnerclient.ListProductsParams) (partnerclient.Page[partnerclient.Product], error)
	PurchaseInfo(ctx context.Context, productID int64, productNo string) (partnerclient.PurchaseInfo, error)
	BillingContacts(ctx context.Context) ([]partnerclient.BillingContact, error)
	SubordinateUsers(ctx context.Context) ([]partnerclient.SubordinateUser, error)
	CreateOrder(ctx context.Context, req partnerclient.OrderRequest) (partnerclient.OrderResult, error)
	ListOrders(ctx context.Context, p partnerclient.ListOrdersParams) (partnerclient.Page[partnerclient.OrderSummary], error)
	OrderDetails(ctx context.Context, idOrNo string) (partnerclient.OrderDetails, error)
	AutoRenewStatus(ctx context.Context, productID int64, productNo string) (bool, error)
	EnableAutoRenewal(ctx context.Context, req partnerclient.AutoRenewalRequest) (bool, error)
	ActivationCode(ctx context.Context, productID int64, productNo string) (partnerclient.ActivationCode, error)
}
