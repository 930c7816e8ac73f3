// Program otelcol-redact-e2e is a lean build of the stock OpenTelemetry Collector
// (core + contrib components, one pinned release) used by redact-proxy's end-to-end
// tests and side-by-side benchmarks. It is what the collector builder (ocb) would
// generate for the component list in components.go; writing it by hand keeps the
// build to one `go build` with a committed go.sum.
package main

import (
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/confmap/provider/yamlprovider"
	"go.opentelemetry.io/collector/otelcol"
)

// version is the contrib release every component is pinned to (see go.mod).
const version = "0.161.0"

func main() {
	set := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-redact-e2e",
			Description: "OpenTelemetry Collector (contrib components) for redact-proxy e2e tests",
			Version:     version,
		},
		Factories: components,
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{
					envprovider.NewFactory(),
					fileprovider.NewFactory(),
					yamlprovider.NewFactory(),
				},
			},
		},
	}
	if err := otelcol.NewCommand(set).Execute(); err != nil {
		// cobra has already printed the error.
		os.Exit(1)
	}
}
