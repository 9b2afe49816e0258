package restmux

import (
	"context"
	"net/http/httptest"
	"net/url"
	"testing"

	"google.golang.org/genproto/googleapis/api/httpbody"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/marquee-dev/marquee/services/gateway/internal/reqinfo"
	"github.com/marquee-dev/marquee/services/platform/apierr"
)

func TestIncomingHeader(t *testing.T) {
	for h, want := range map[string]string{
		"X-Api-Key": "x-api-key", "x-api-key": "x-api-key", "X-Request-Id": "x-request-id",
		"Authorization": "", "Cookie": "", "Grpc-Metadata-Role": "", "X-Forwarded-For": "", "Host": "",
	} {
		got, ok := IncomingHeader(h)
		if got != want || ok != (want != "") {
			t.Errorf("IncomingHeader(%q) = %q, %v", h, got, ok)
		}
	}
}

func TestNextLink(t *testing.T) {
	u, _ := url.Parse("/v1/movies?pageSize=5&filter=year%3E1990&pageToken=old")
	want := `</v1/movies?filter=year%3E1990&pageSize=5&page_token=abc%2Bdef>; rel="next"`
	if got := nextLink(u, "abc+def"); got != want {
		t.Errorf("nextLink = %s, want %s", got, want)
	}
}

func TestRewriteEndsEveryChunkWithANewline(t *testing.T) {
	for _, tc := range []struct{ in, want, ct string }{
		{"{}\n", "{}\n", "application/x-ndjson"},
		{"{}", "{}\n", "application/x-ndjson"},
		{"", "", "application/x-ndjson"},
	} {
		out, err := rewrite(context.Background(), &httpbody.HttpBody{Data: []byte(tc.in)})
		if err != nil {
			t.Fatal(err)
		}
		hb := out.(*httpbody.HttpBody)
		if string(hb.GetData()) != tc.want || hb.GetContentType() != tc.ct {
			t.Errorf("rewrite(%q) = %q %q", tc.in, hb.GetData(), hb.GetContentType())
		}
	}
}

func ctxWith(ifMatch, key string) context.Context {
	r, info := reqinfo.New(httptest.NewRequest("GET", "/", nil))
	info.IfMatch, info.IdempotencyKey = ifMatch, key
	return r.Context()
}

func TestConditionalETag(t *testing.T) {
	for _, tc := range []struct {
		header, body, want string
		code               codes.Code
	}{
		{"", "", "", codes.OK},
		{"", `"3"`, `"3"`, codes.OK},
		{`"3"`, "", `"3"`, codes.OK},
		{`3`, "", `"3"`, codes.OK},
		{`"3"`, `"3"`, `"3"`, codes.OK},
		{"*", `"3"`, `"3"`, codes.OK},
		{`"3"`, `"4"`, "", codes.Aborted},
		{`W/"3"`, "", "", codes.Aborted},
		{`"3", "4"`, "", "", codes.InvalidArgument},
	} {
		got, err := conditionalETag(ctxWith(tc.header, ""), tc.body)
		if status.Code(err) != tc.code || got != tc.want {
			t.Errorf("If-Match %q, body %q: %q, %v", tc.header, tc.body, got, err)
		}
		if tc.code == codes.Aborted && apierr.Reason(err) != "ETAG_MISMATCH" {
			t.Errorf("reason %q", apierr.Reason(err))
		}
	}
}

func TestRequestID(t *testing.T) {
	for _, tc := range []struct {
		header, body, want string
		code               codes.Code
	}{
		{"", "", "", codes.OK},
		{"k1", "", "k1", codes.OK},
		{"", "k2", "k2", codes.OK},
		{"k1", "k1", "k1", codes.OK},
		{"k1", "k2", "", codes.InvalidArgument},
		{string(make([]byte, 101)), "", "", codes.InvalidArgument},
	} {
		got, err := requestID(ctxWith("", tc.header), tc.body)
		if status.Code(err) != tc.code || got != tc.want {
			t.Errorf("Idempotency-Key %q, request_id %q: %q, %v", tc.header, tc.body, got, err)
		}
	}
}
