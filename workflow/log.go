package workflow

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/fulfil/fulfil/partnerclient"
)

func stepFields(step string, attempt int, err error, wait time.Duration) []zap.Field {
	fields := []zap.Field{zap.String("step", step), zap.Int("attempt", attempt), zap.Error(err), zap.Duration("wait", wait)}
	var pe *partnerclient.Error
	if errors.As(err, &pe) && pe.RequestID != "" {
		fields = append(fields, zap.String("partner_request_id", pe.RequestID))
	}
	return fields
}
