package grpcapi

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// LenientCodec returns a server option whose codec decodes a request with
// a string field that is not UTF-8 instead of refusing it: gRPC reports a
// message it cannot decode as INTERNAL, blaming the server for the client's
// bytes. Invalid sequences become U+FFFD, so such a query is searched as
// the text it can be read as (a sane result rather than an error).
// Everything else is the standard protobuf codec.
func LenientCodec() grpc.ServerOption { return grpc.ForceServerCodec(lenientCodec{}) }

type lenientCodec struct{}

func (lenientCodec) Name() string { return "proto" }

func (lenientCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("encoding %T: not a protobuf message", v)
	}
	return proto.Marshal(m)
}

func (lenientCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("decoding into %T: not a protobuf message", v)
	}
	err := proto.Unmarshal(data, m)
	if err == nil {
		return nil
	}
	fixed, ferr := repairStrings(data, m.ProtoReflect().Descriptor(), 0)
	if ferr != nil {
		return err
	}
	return proto.Unmarshal(fixed, m)
}

// repairStrings re-encodes data with invalid UTF-8 in string fields
// replaced, recursing into message fields.
func repairStrings(data []byte, md protoreflect.MessageDescriptor, depth int) ([]byte, error) {
	if depth > 32 {
		return nil, errors.New("message nested too deeply")
	}
	out := make([]byte, 0, len(data))
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		tag := data[:n]
		data = data[n:]
		fd := md.Fields().ByNumber(num)
		if typ == protowire.BytesType && fd != nil && (fd.Kind() == protoreflect.StringKind || fd.Kind() == protoreflect.MessageKind) {
			v, m := protowire.ConsumeBytes(data)
			if m < 0 {
				return nil, protowire.ParseError(m)
			}
			data = data[m:]
			if fd.Kind() == protoreflect.StringKind {
				if !utf8.Valid(v) {
					v = []byte(strings.ToValidUTF8(string(v), "\uFFFD"))
				}
			} else {
				var err error
				if v, err = repairStrings(v, fd.Message(), depth+1); err != nil {
					return nil, err
				}
			}
			out = append(out, tag...)
			out = protowire.AppendBytes(out, v)
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, data)
		if m < 0 {
			return nil, protowire.ParseError(m)
		}
		out = append(out, tag...)
		out = append(out, data[:m]...)
		data = data[m:]
	}
	return out, nil
}
