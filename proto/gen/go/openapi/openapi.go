// Package openapi embeds the OpenAPI 3 documents generated from the protos,
// one per API package, for the gateway to merge and serve.
package openapi

import "embed"

// FS holds marquee/{catalog,search,auth}/v1/*.openapi.json.
//
//go:embed marquee
var FS embed.FS
