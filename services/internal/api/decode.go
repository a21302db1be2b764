package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/dionysia/dionysia/services/internal/apiv1"
)

// decodeJSON reads exactly one JSON document from r into v, rejecting unknown
// fields. Every failure is a *problemError saying what is wrong and where (400;
// 422 naming the field for a value of the wrong JSON type), or the
// *http.MaxBytesError of an over-long body (413).
func decodeJSON(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	// Exactly one document: anything but whitespace after it is an error.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return decodeError(err)
	default:
		return badRequest("malformed JSON: unexpected data after the JSON document at byte offset %d", dec.InputOffset()-int64(len(extra)))
	}
}

func decodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
		mbe    *http.MaxBytesError
	)
	switch {
	case errors.As(err, &mbe):
		return mbe
	case errors.Is(err, io.EOF):
		return badRequest("the request body is empty; a JSON object is required")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("malformed JSON: the document ends early")
	case errors.As(err, &syntax):
		return badRequest("malformed JSON at byte offset %d: %s", syntax.Offset, strings.TrimPrefix(syntax.Error(), "json: "))
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return badRequest("the body must be a JSON object, got JSON %s", typ.Value)
		}
		return &problemError{status: http.StatusUnprocessableEntity,
			detail: fmt.Sprintf("%s: must be a JSON %s, got JSON %s", field, jsonKind(typ.Type.Kind().String()), typ.Value),
			fields: []apiv1.FieldError{{Field: field, Detail: fmt.Sprintf("must be a JSON %s, got JSON %s", jsonKind(typ.Type.Kind().String()), typ.Value)}}}
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		return &problemError{status: http.StatusBadRequest, detail: fmt.Sprintf("unknown field %q", name),
			fields: []apiv1.FieldError{{Field: name, Detail: "unknown field"}}}
	}
	return badRequest("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64", "float32", "float64":
		return "number"
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	}
	return "value"
}

// readBody decodes the request body of a handler into v. The body is JSON
// whatever its Content-Type says (curl -d sends form-urlencoded by default);
// anything else fails to decode with a 400.
func readBody(req *http.Request, v any) error {
	return decodeJSON(req.Body, v)
}
