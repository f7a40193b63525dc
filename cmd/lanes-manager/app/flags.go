package app

import (
	"flag"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// flagSetFor exposes the zap logging flags (--zap-log-level, --zap-devel, ...).
func flagSetFor(o *zap.Options) *flag.FlagSet {
	fs := flag.NewFlagSet("zap", flag.ContinueOnError)
	o.BindFlags(fs)
	return fs
}
