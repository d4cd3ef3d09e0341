package workflow

import (
	"time"

	"go.uber.org/zap"
)

func stepFields(step string, attempt int, err error, wait time.Duration) []zap.Field {
	return []zap.Field{zap.String("step", step), zap.Int("attempt", attempt), zap.Error(err), zap.Duration("wait", wait)}
}
