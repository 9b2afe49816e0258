package grpcapi_test

import (
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"

	searchv1 "github.com/marquee-dev/marquee/proto/gen/go/marquee/search/v1"
	"github.com/marquee-dev/marquee/services/search/internal/grpcapi"
)

// rawCodec sends bytes as they are, so a test can put on the wire what no
// protobuf library would encode.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

var _ encoding.Codec = rawCodec{}

func TestInvalidUTF8OnTheWire(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpcapi.LenientCodec())
	s, _ := newServer(t)
	grpcapi.Register(g, s)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///"+lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	// Field 1 (q), length 4, bytes that are not UTF-8.
	req := []byte{0x0a, 0x04, 'g', 0xff, 0xfe, 'd'}
	var resp []byte
	err = conn.Invoke(t.Context(), "/marquee.search.v1.SearchService/SearchMovies", &req, &resp, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		t.Fatalf("invalid UTF-8 on the wire: %v, want a result", err)
	}
	var got searchv1.SearchMoviesResponse
	if err := proto.Unmarshal(resp, &got); err != nil {
		t.Fatal(err)
	}
	_ = got.GetTotalSize() // searched as "g\uFFFD\uFFFDd": any total is sane
	// A well-formed request still works through the same registration.
	out, err := searchv1.NewSearchServiceClient(conn).SearchMovies(t.Context(), &searchv1.SearchMoviesRequest{Q: "casablanca"})
	if err != nil || len(out.GetResults()) == 0 {
		t.Fatalf("valid request: %v", err)
	}
}
