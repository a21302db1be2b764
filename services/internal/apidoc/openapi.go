package apidoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The subset of OpenAPI 3.1 the renderer reads. Unknown keys are ignored.

type document struct {
	OpenAPI    string                `json:"openapi"`
	Info       info                  `json:"info"`
	Servers    []server              `json:"servers"`
	Security   []securityRequirement `json:"security"`
	Paths      ordered[pathItem]     `json:"paths"`
	Components components            `json:"components"`
	Tags       []tag                 `json:"tags"`
}

type info struct {
	Title       string `json:"title"`
	Version     string `json:"version"`
	Description string `json:"description"`
}

type server struct {
	URL         string `json:"url"`
	Description string `json:"description"`
}

type tag struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

// securityRequirement maps scheme names to scopes; a list of them means "any
// one of these".
type securityRequirement map[string][]string

type components struct {
	SecuritySchemes ordered[securityScheme] `json:"securitySchemes"`
	Schemas         ordered[*schema]        `json:"schemas"`
	Responses       ordered[response]       `json:"responses"`
	Parameters      ordered[parameter]      `json:"parameters"`
	RequestBodies   ordered[requestBody]    `json:"requestBodies"`
}

type securityScheme struct {
	Type        string `json:"type"`
	Scheme      string `json:"scheme"`
	Name        string `json:"name"`
	In          string `json:"in"`
	Description string `json:"description"`
}

// pathItem holds a path's operations by lower-case method, in document order,
// and the parameters shared by all of them.
type pathItem struct {
	Parameters []parameter
	Methods    []string
	Operations map[string]operation
}

// methods are the keys of a path item that hold operations.
var methods = map[string]bool{
	"get": true, "put": true, "post": true, "delete": true, "options": true, "head": true, "patch": true, "trace": true,
}

func (p *pathItem) UnmarshalJSON(b []byte) error {
	var raw ordered[json.RawMessage]
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	p.Operations = map[string]operation{}
	for _, k := range raw.Keys {
		switch {
		case k == "parameters":
			if err := json.Unmarshal(raw.Values[k], &p.Parameters); err != nil {
				return fmt.Errorf("parameters: %w", err)
			}
		case methods[k]:
			var op operation
			if err := json.Unmarshal(raw.Values[k], &op); err != nil {
				return fmt.Errorf("%s: %w", k, err)
			}
			p.Methods = append(p.Methods, k)
			p.Operations[k] = op
		}
	}
	return nil
}

type operation struct {
	Summary     string            `json:"summary"`
	Description string            `json:"description"`
	OperationID string            `json:"operationId"`
	Tags        []string          `json:"tags"`
	Deprecated  bool              `json:"deprecated"`
	Parameters  []parameter       `json:"parameters"`
	RequestBody *requestBody      `json:"requestBody"`
	Responses   ordered[response] `json:"responses"`
	// Security is nil when the operation inherits the document's; an empty
	// list means no authentication.
	Security *[]securityRequirement `json:"security"`
}

type parameter struct {
	Ref         string  `json:"$ref"`
	Name        string  `json:"name"`
	In          string  `json:"in"`
	Description string  `json:"description"`
	Required    bool    `json:"required"`
	Deprecated  bool    `json:"deprecated"`
	Schema      *schema `json:"schema"`
}

type requestBody struct {
	Ref         string             `json:"$ref"`
	Description string             `json:"description"`
	Required    bool               `json:"required"`
	Content     ordered[mediaType] `json:"content"`
}

type response struct {
	Ref         string             `json:"$ref"`
	Description string             `json:"description"`
	Headers     ordered[header]    `json:"headers"`
	Content     ordered[mediaType] `json:"content"`
}

type header struct {
	Description string  `json:"description"`
	Required    bool    `json:"required"`
	Schema      *schema `json:"schema"`
}

type mediaType struct {
	Schema *schema `json:"schema"`
}

// schema is a JSON Schema (2020-12, as OpenAPI 3.1 uses it). Values that are
// printed as given (defaults, enums, examples, bounds) stay raw JSON so the
// output shows exactly what the document says.
type schema struct {
	Ref                  string            `json:"$ref"`
	Title                string            `json:"title"`
	Description          string            `json:"description"`
	Type                 typeList          `json:"type"`
	Format               string            `json:"format"`
	Enum                 []json.RawMessage `json:"enum"`
	Const                json.RawMessage   `json:"const"`
	Default              json.RawMessage   `json:"default"`
	Examples             []json.RawMessage `json:"examples"`
	Example              json.RawMessage   `json:"example"`
	Minimum              json.RawMessage   `json:"minimum"`
	Maximum              json.RawMessage   `json:"maximum"`
	ExclusiveMinimum     json.RawMessage   `json:"exclusiveMinimum"`
	ExclusiveMaximum     json.RawMessage   `json:"exclusiveMaximum"`
	MinLength            *int              `json:"minLength"`
	MaxLength            *int              `json:"maxLength"`
	MinItems             *int              `json:"minItems"`
	MaxItems             *int              `json:"maxItems"`
	UniqueItems          bool              `json:"uniqueItems"`
	Pattern              string            `json:"pattern"`
	Items                *schema           `json:"items"`
	Properties           ordered[*schema]  `json:"properties"`
	Required             []string          `json:"required"`
	AdditionalProperties json.RawMessage   `json:"additionalProperties"`
	OneOf                []*schema         `json:"oneOf"`
	AnyOf                []*schema         `json:"anyOf"`
	AllOf                []*schema         `json:"allOf"`
	Nullable             bool              `json:"nullable"`
	ReadOnly             bool              `json:"readOnly"`
	WriteOnly            bool              `json:"writeOnly"`
	Deprecated           bool              `json:"deprecated"`
}

// typeList is a schema's "type": one name or a list of names.
type typeList []string

func (t *typeList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*t = typeList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("type must be a string or a list of strings: %w", err)
	}
	*t = many
	return nil
}

// ordered is a JSON object decoded with its keys in document order, so the
// output follows the order the document's authors chose.
type ordered[T any] struct {
	Keys   []string
	Values map[string]T
}

func (o *ordered[T]) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil { // null
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("expected a JSON object")
	}
	o.Keys, o.Values = nil, map[string]T{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("expected an object key")
		}
		var v T
		if err := dec.Decode(&v); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if _, dup := o.Values[key]; dup {
			return fmt.Errorf("duplicate key %q", key)
		}
		o.Keys = append(o.Keys, key)
		o.Values[key] = v
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	return nil
}
