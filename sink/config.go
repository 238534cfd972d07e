package sink

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	veritrail "github.com/veritrail/veritrail"
)

// Sink types.
const (
	Webhook   = "webhook"
	SplunkHEC = "splunk_hec"
	Datadog   = "datadog"
	Syslog    = "syslog"
	Kafka     = "kafka"
	S3        = "s3"
)

// Types lists the sink types, in the order the docs present them.
var Types = []string{Webhook, SplunkHEC, Datadog, Syslog, Kafka, S3}

// Object layouts of s3 sinks.
const (
	// LayoutHive: NDJSON.gz objects (native or OCSF records) under
	// <prefix>org=<org>/date=<yyyy-mm-dd>/hour=<hh>/.
	LayoutHive = "hive"
	// LayoutSecurityLake: OCSF records in Parquet, one OCSF class per
	// object, under ext/<source>/region=<r>/accountId=<a>/eventDay=<yyyymmdd>/
	// as AWS Security Lake expects of a custom source.
	LayoutSecurityLake = "security_lake"
)

// Record formats.
const (
	FormatNative = "native" // the API's event JSON, byte for byte
	FormatOCSF   = "ocsf"   // OCSF 1.6.0 JSON
	FormatCEF    = "cef"    // ArcSight CEF (syslog only)
)

// Config is a sink's settings, as stored (with the secret sealed, see
// stored) and as the API shows them (without it). Fields that do not
// apply to a sink's type are empty.
type Config struct {
	Format  string      `json:"format"`
	Content bool        `json:"content"` // forward content (prompts, bodies…), not only metadata
	Filters Filters     `json:"filters"`
	Batch   BatchLimits `json:"batch"`

	// webhook, splunk_hec, datadog (an intake URL overriding site)
	URL string `json:"url,omitempty"`
	// datadog: the Datadog site, e.g. datadoghq.com, datadoghq.eu
	Site string `json:"site,omitempty"`
	// syslog: host:port, tcp or tls, octet_counting or newline
	Address  string `json:"address,omitempty"`
	Protocol string `json:"protocol,omitempty"`
	Framing  string `json:"framing,omitempty"`
	Facility *int   `json:"facility,omitempty"`
	AppName  string `json:"app_name,omitempty"`
	// syslog HOSTNAME, Splunk host, Datadog hostname
	Hostname string `json:"hostname,omitempty"`
	// splunk_hec
	Index      string `json:"index,omitempty"`
	Source     string `json:"source,omitempty"`
	SourceType string `json:"sourcetype,omitempty"`
	// datadog
	Service string   `json:"service,omitempty"`
	Tags    []string `json:"tags,omitempty"`
	// kafka
	Brokers  []string `json:"brokers,omitempty"`
	Topic    string   `json:"topic,omitempty"`
	TLS      bool     `json:"tls,omitempty"`
	SASL     string   `json:"sasl,omitempty"` // plain, scram-sha-256, scram-sha-512; the secret is the password
	Username string   `json:"username,omitempty"`
	// s3: the bucket, an S3-compatible server's URL (AWS when empty), the
	// region, the access key id (the secret is the secret access key),
	// the object layout; hive: a key prefix; security_lake: the account
	// id and the custom source name per OCSF class uid.
	Bucket      string            `json:"bucket,omitempty"`
	Endpoint    string            `json:"endpoint,omitempty"`
	Region      string            `json:"region,omitempty"`
	AccessKeyID string            `json:"access_key_id,omitempty"`
	Layout      string            `json:"layout,omitempty"`
	Prefix      string            `json:"prefix,omitempty"`
	AccountID   string            `json:"account_id,omitempty"`
	Sources     map[string]string `json:"sources,omitempty"`
	// TLS of https URLs, syslog over TLS and Kafka: a private CA, and the
	// name to verify when it differs from the address's host.
	CAFile     string `json:"ca_file,omitempty"`
	ServerName string `json:"server_name,omitempty"`

	// SecretFile names a file holding the secret (read at each connection,
	// so rotating the file rotates the secret); the alternative to a
	// secret sealed in the store.
	SecretFile string `json:"secret_file,omitempty"`
}

// Filters select the events a sink receives; empty lists select all.
type Filters struct {
	// Types are event types, exact (auth.login) or prefixes (auth.*).
	Types []string `json:"types,omitempty"`
	// Categories are the parts of types before the first dot (agent, ai).
	Categories []string `json:"categories,omitempty"`
}

// BatchLimits bound a delivery: at most MaxEvents events and about MaxBytes of
// records (a single larger record goes alone), sent once MaxWait passed
// since events became pending, sooner when full.
type BatchLimits struct {
	MaxEvents int      `json:"max_events"`
	MaxBytes  int      `json:"max_bytes"`
	MaxWait   Duration `json:"max_wait"`
}

// Duration is a time.Duration written as a Go duration string ("1s").
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New("a duration such as 500ms or 2s")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("a duration such as 500ms or 2s")
	}
	*d = Duration(v)
	return nil
}

// stored is a sink's Config as the store keeps it.
type stored struct {
	Config
	SecretSealed string `json:"secret_sealed,omitempty"`
}

func decodeStored(b []byte) (*stored, error) {
	var st stored
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("sink config: %w", err)
	}
	return &st, nil
}

// spec is what an administrator sends: the settings, and the parts that
// are not settings.
type spec struct {
	Name   string  `json:"name"`
	Type   string  `json:"type"`
	Secret *string `json:"secret"`
	Start  string  `json:"start"` // beginning | now (create only)
	Paused bool    `json:"paused"`
	Config
}

func invalid(field, format string, args ...any) error {
	e := veritrail.Errorf(veritrail.EInvalid, "field %s: %s", field, fmt.Sprintf(format, args...))
	e.Field = field
	return e
}

// decodeSpec decodes an administrator's request strictly, naming the
// field at fault.
func decodeSpec(b []byte) (*spec, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sp spec
	err := dec.Decode(&sp)
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		return &sp, nil
	case errors.As(err, &typ):
		return nil, invalid(strings.TrimPrefix(typ.Field, "Config."), "%s expected, got %s", typ.Type, typ.Value)
	}
	msg := strings.TrimPrefix(err.Error(), "json: ")
	if f, ok := strings.CutPrefix(msg, "unknown field "); ok {
		return nil, invalid(strings.Trim(f, `"`), "unknown field; see docs/FORWARDING.md for a sink's settings")
	}
	// Errors from Duration.UnmarshalJSON name no field: max_wait is the only one.
	if strings.Contains(msg, "duration") {
		return nil, invalid("batch.max_wait", "%s", msg)
	}
	return nil, veritrail.Errorf(veritrail.EInvalid, "request body: %s", msg)
}

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)
	siteRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
	topicRE    = regexp.MustCompile(`^[A-Za-z0-9._-]{1,249}$`)
	tokenishRE = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`) // printable, no space: syslog names, Splunk fields
)

// defaults and limits
const (
	defaultMaxEvents = 500
	maxMaxEvents     = 10000
	defaultMaxBytes  = 1 << 20
	maxMaxBytes      = 16 << 20
	defaultMaxWait   = Duration(time.Second)
	maxMaxWait       = Duration(time.Minute)

	datadogMaxEvents = 1000    // Datadog: entries per request
	datadogMaxBytes  = 5 << 20 // Datadog: uncompressed payload

	// Objects are better large: a data lake pays per object and per
	// request, and Security Lake asks for objects of minutes, not seconds.
	s3DefaultMaxEvents = 10000
	s3MaxMaxEvents     = 100000
	s3DefaultMaxBytes  = 16 << 20
	s3MaxMaxBytes      = 64 << 20
	s3DefaultMaxWait   = Duration(time.Minute)
	s3MaxMaxWait       = Duration(time.Hour)
)

var (
	bucketRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	regionRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	accountRE = regexp.MustCompile(`^[0-9]{12}$`)
	// a Security Lake custom source name, optionally with its version
	// (ext/<name>/<version>/ in newer lakes)
	lakeSourceRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}(/[A-Za-z0-9._-]{1,32})?$`)
	prefixRE     = regexp.MustCompile(`^([A-Za-z0-9!_.*'()=-]+/)*$`)
)

// OCSFClasses are the class uids OCSF records can have, as the keys of an
// s3 sink's sources.
var OCSFClasses = veritrail.Classes

// needsSecret reports whether a sink of this config must have a secret.
func needsSecret(typ string, c *Config) bool {
	switch typ {
	case Webhook, SplunkHEC, Datadog:
		return true
	case Kafka:
		return c.SASL != ""
	case S3:
		return true
	}
	return false
}

// validate checks sp and fills in defaults. hasSealed says whether a
// secret is available without sp.Secret (a sealed one kept from before).
func (sp *spec) validate(hasSealed bool) error {
	c := &sp.Config
	if sp.Name == "" {
		sp.Name = sp.Type
	}
	if !nameRE.MatchString(sp.Name) {
		return invalid("name", "1 to 100 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if !slices.Contains(Types, sp.Type) {
		return invalid("type", "one of %s", strings.Join(Types, ", "))
	}
	switch sp.Start {
	case "", "beginning", "now":
	default:
		return invalid("start", "beginning (every event in the log) or now (events from now on)")
	}
	switch c.Format {
	case "":
		c.Format = FormatNative
	case FormatNative, FormatOCSF:
	case FormatCEF:
		if sp.Type != Syslog {
			return invalid("format", "cef is for syslog sinks; use native or ocsf")
		}
		if c.Content {
			return invalid("content", "CEF records carry metadata only; use format native or ocsf to forward content")
		}
	default:
		return invalid("format", "native, ocsf or cef (syslog)")
	}
	for i, t := range c.Filters.Types {
		if _, err := veritrail.ParseFilterValue(veritrail.FieldType, t); err != nil || strings.Contains(t, ",") {
			return invalid(fmt.Sprintf("filters.types[%d]", i), "%q is not a type such as auth.login or a prefix such as auth.*", t)
		}
		c.Filters.Types[i] = strings.ToLower(t)
	}
	for i, cat := range c.Filters.Categories {
		if _, err := veritrail.ParseFilterValue(veritrail.FieldType, cat+".*"); err != nil {
			return invalid(fmt.Sprintf("filters.categories[%d]", i), "%q is not a category such as auth or agent", cat)
		}
		c.Filters.Categories[i] = strings.ToLower(cat)
	}
	b := &c.Batch
	maxEvents, maxBytes, maxWait := maxMaxEvents, maxMaxBytes, maxMaxWait
	if sp.Type == S3 {
		maxEvents, maxBytes, maxWait = s3MaxMaxEvents, s3MaxMaxBytes, s3MaxMaxWait
	}
	if b.MaxEvents == 0 {
		b.MaxEvents = defaultMaxEvents
		switch sp.Type {
		case Datadog:
			b.MaxEvents = min(b.MaxEvents, datadogMaxEvents)
		case S3:
			b.MaxEvents = s3DefaultMaxEvents
		}
	}
	if b.MaxEvents < 1 || b.MaxEvents > maxEvents {
		return invalid("batch.max_events", "1 to %d", maxEvents)
	}
	if sp.Type == Datadog && b.MaxEvents > datadogMaxEvents {
		return invalid("batch.max_events", "Datadog takes at most %d logs per request", datadogMaxEvents)
	}
	if b.MaxBytes == 0 {
		b.MaxBytes = defaultMaxBytes
		if sp.Type == S3 {
			b.MaxBytes = s3DefaultMaxBytes
		}
	}
	if b.MaxBytes < 1024 || b.MaxBytes > maxBytes {
		return invalid("batch.max_bytes", "1024 to %d", maxBytes)
	}
	if sp.Type == Datadog && b.MaxBytes > datadogMaxBytes {
		return invalid("batch.max_bytes", "Datadog takes at most %d bytes per request", datadogMaxBytes)
	}
	if b.MaxWait == 0 {
		b.MaxWait = defaultMaxWait
		if sp.Type == S3 {
			b.MaxWait = s3DefaultMaxWait
		}
	}
	if b.MaxWait < 0 || b.MaxWait > maxWait {
		return invalid("batch.max_wait", "0s to %s", time.Duration(maxWait))
	}

	// Each type's own settings; the others' are refused so a typo does
	// not pass silently.
	allowed := map[string][]string{
		Webhook:   {"url", "ca_file", "server_name"},
		SplunkHEC: {"url", "ca_file", "server_name", "hostname", "index", "source", "sourcetype"},
		Datadog:   {"url", "site", "ca_file", "server_name", "hostname", "service", "tags"},
		Syslog:    {"address", "protocol", "framing", "facility", "app_name", "hostname", "ca_file", "server_name"},
		Kafka:     {"brokers", "topic", "tls", "sasl", "username", "ca_file", "server_name"},
		S3:        {"bucket", "endpoint", "region", "access_key_id", "layout", "prefix", "account_id", "sources", "ca_file", "server_name"},
	}[sp.Type]
	set := map[string]bool{
		"url": c.URL != "", "site": c.Site != "", "address": c.Address != "", "protocol": c.Protocol != "",
		"framing": c.Framing != "", "facility": c.Facility != nil, "app_name": c.AppName != "", "hostname": c.Hostname != "",
		"index": c.Index != "", "source": c.Source != "", "sourcetype": c.SourceType != "", "service": c.Service != "",
		"tags": len(c.Tags) > 0, "brokers": len(c.Brokers) > 0, "topic": c.Topic != "", "tls": c.TLS, "sasl": c.SASL != "",
		"username": c.Username != "", "ca_file": c.CAFile != "", "server_name": c.ServerName != "",
		"bucket": c.Bucket != "", "endpoint": c.Endpoint != "", "region": c.Region != "", "access_key_id": c.AccessKeyID != "",
		"layout": c.Layout != "", "prefix": c.Prefix != "", "account_id": c.AccountID != "", "sources": len(c.Sources) > 0,
	}
	for _, f := range []string{"url", "site", "address", "protocol", "framing", "facility", "app_name", "hostname", "index", "source",
		"sourcetype", "service", "tags", "brokers", "topic", "tls", "sasl", "username", "ca_file", "server_name",
		"bucket", "endpoint", "region", "access_key_id", "layout", "prefix", "account_id", "sources"} {
		if set[f] && !slices.Contains(allowed, f) {
			return invalid(f, "not a setting of %s sinks", sp.Type)
		}
	}

	switch sp.Type {
	case Webhook, SplunkHEC:
		if err := checkURL("url", c.URL, true); err != nil {
			return err
		}
	case Datadog:
		if c.URL != "" {
			if err := checkURL("url", c.URL, true); err != nil {
				return err
			}
			if c.Site != "" {
				return invalid("url", "give site or url, not both")
			}
		} else if c.Site == "" {
			c.Site = "datadoghq.com"
		}
		if c.Site != "" && !siteRE.MatchString(c.Site) {
			return invalid("site", "a Datadog site such as datadoghq.com, us5.datadoghq.com or datadoghq.eu")
		}
		if c.Service == "" {
			c.Service = "veritrail"
		}
		for i, t := range c.Tags {
			if t == "" || len(t) > 200 || strings.ContainsAny(t, ", \n") {
				return invalid(fmt.Sprintf("tags[%d]", i), "a Datadog tag such as env:prod (no comma or space)")
			}
		}
	case Syslog:
		if err := checkHostPort("address", c.Address); err != nil {
			return err
		}
		switch c.Protocol {
		case "":
			c.Protocol = "tcp"
		case "tcp", "tls":
		default:
			return invalid("protocol", "tcp or tls (RFC 5425)")
		}
		switch c.Framing {
		case "":
			c.Framing = "octet_counting"
		case "octet_counting", "newline":
		default:
			return invalid("framing", "octet_counting (RFC 6587, the default) or newline")
		}
		if c.Facility == nil {
			f := 13 // log audit
			c.Facility = &f
		}
		if *c.Facility < 0 || *c.Facility > 23 {
			return invalid("facility", "0 to 23 (13 is log audit)")
		}
		if c.AppName == "" {
			c.AppName = "veritrail"
		}
		if len(c.AppName) > 48 || !tokenishRE.MatchString(c.AppName) {
			return invalid("app_name", "1 to 48 printable characters without spaces")
		}
		if c.Protocol == "tcp" && (c.CAFile != "" || c.ServerName != "") {
			return invalid("protocol", "ca_file and server_name need protocol tls")
		}
	case Kafka:
		if len(c.Brokers) == 0 {
			return invalid("brokers", "one or more host:port")
		}
		for i, b := range c.Brokers {
			if err := checkHostPort(fmt.Sprintf("brokers[%d]", i), b); err != nil {
				return err
			}
		}
		if !topicRE.MatchString(c.Topic) {
			return invalid("topic", "a Kafka topic name: 1 to 249 letters, digits, '.', '_' or '-'")
		}
		switch c.SASL {
		case "", "plain", "scram-sha-256", "scram-sha-512":
		default:
			return invalid("sasl", "plain, scram-sha-256 or scram-sha-512")
		}
		if (c.SASL == "") != (c.Username == "") {
			return invalid("username", "give sasl and username together")
		}
		if !c.TLS && (c.CAFile != "" || c.ServerName != "") {
			return invalid("tls", "ca_file and server_name need tls true")
		}
	case S3:
		if err := c.validateS3(); err != nil {
			return err
		}
	}
	if sp.Type == SplunkHEC {
		for f, v := range map[string]string{"index": c.Index, "source": c.Source, "sourcetype": c.SourceType, "hostname": c.Hostname} {
			if v != "" && !tokenishRE.MatchString(v) {
				return invalid(f, "1 to 128 printable characters without spaces")
			}
		}
	}
	if c.Hostname != "" && (len(c.Hostname) > 255 || !tokenishRE.MatchString(c.Hostname)) {
		return invalid("hostname", "printable characters without spaces")
	}
	if c.CAFile != "" {
		if _, err := readCAFile(c.CAFile); err != nil {
			return invalid("ca_file", "%v", err)
		}
	}

	// The secret: given now, in a file, or kept from before.
	if sp.Secret != nil && c.SecretFile != "" {
		return invalid("secret", "give secret or secret_file, not both")
	}
	if sp.Secret != nil && (*sp.Secret == "" || len(*sp.Secret) > 4096) {
		return invalid("secret", "1 to 4096 bytes")
	}
	if c.SecretFile != "" {
		if _, err := readSecretFile(c.SecretFile); err != nil {
			return invalid("secret_file", "%v", err)
		}
	}
	has := sp.Secret != nil || c.SecretFile != "" || hasSealed
	if needsSecret(sp.Type, c) && !has {
		what := map[string]string{Webhook: "the HMAC key that signs each body", SplunkHEC: "the HEC token",
			Datadog: "the Datadog API key", Kafka: "the SASL password", S3: "the secret access key"}[sp.Type]
		return invalid("secret", "required: %s (or secret_file)", what)
	}
	if !needsSecret(sp.Type, c) && (sp.Secret != nil || c.SecretFile != "") {
		return invalid("secret", "%s sinks take no secret", sp.Type)
	}
	return nil
}

// validateS3 checks an s3 sink's own settings and fills in defaults.
func (c *Config) validateS3() error {
	if !bucketRE.MatchString(c.Bucket) || strings.Contains(c.Bucket, "..") {
		return invalid("bucket", "an S3 bucket name: 3 to 63 lower-case letters, digits, '.' or '-'")
	}
	if c.Endpoint != "" {
		if err := checkURL("endpoint", c.Endpoint, false); err != nil {
			return err
		}
		if u, _ := url.Parse(c.Endpoint); u.Path != "" && u.Path != "/" || u.RawQuery != "" {
			return invalid("endpoint", "the server's base URL, without a path or query (the bucket is a setting of its own)")
		}
	}
	if c.Region == "" {
		c.Region = "us-east-1"
	}
	if !regionRE.MatchString(c.Region) {
		return invalid("region", "a region such as us-east-1")
	}
	if !tokenishRE.MatchString(c.AccessKeyID) {
		return invalid("access_key_id", "required: the access key id (the secret is the secret access key)")
	}
	if c.Endpoint == "" && (c.CAFile != "" || c.ServerName != "") {
		return invalid("endpoint", "ca_file and server_name are for an https endpoint")
	}
	switch c.Layout {
	case "":
		c.Layout = LayoutHive
	case LayoutHive, LayoutSecurityLake:
	default:
		return invalid("layout", "hive (NDJSON.gz) or security_lake (OCSF Parquet)")
	}
	if c.Layout == LayoutHive {
		if c.AccountID != "" {
			return invalid("account_id", "a setting of layout security_lake")
		}
		if len(c.Sources) > 0 {
			return invalid("sources", "a setting of layout security_lake")
		}
		if !prefixRE.MatchString(c.Prefix) || len(c.Prefix) > 512 {
			return invalid("prefix", "a key prefix ending in '/', e.g. veritrail/ (letters, digits, !_.*'()=-)")
		}
		return nil
	}
	if c.Format != FormatOCSF {
		return invalid("format", "layout security_lake takes OCSF records: set format ocsf")
	}
	if c.Prefix != "" {
		return invalid("prefix", "layout security_lake writes under ext/<source>/; the custom source names are in sources")
	}
	if !accountRE.MatchString(c.AccountID) {
		return invalid("account_id", "required: the 12-digit AWS account id of the custom source")
	}
	for k, v := range c.Sources {
		uid, err := strconv.Atoi(k)
		if err != nil || !slices.Contains(OCSFClasses, uid) {
			return invalid("sources."+k, "keys are the OCSF class uids records can have: %s", classList())
		}
		if !lakeSourceRE.MatchString(v) {
			return invalid("sources."+k, "a custom source name (1 to 64 letters, digits, '_' or '-'), optionally /<version>")
		}
	}
	return nil
}

func classList() string {
	var s []string
	for _, c := range OCSFClasses {
		s = append(s, strconv.Itoa(c))
	}
	return strings.Join(s, ", ")
}

// LakeSource is the Security Lake custom source that records of OCSF
// class uid go to: the one named in c.Sources, else veritrail-<uid>
// (Security Lake takes one class per custom source).
func (c *Config) LakeSource(uid int) string {
	if s := c.Sources[strconv.Itoa(uid)]; s != "" {
		return s
	}
	return "veritrail-" + strconv.Itoa(uid)
}

func checkURL(field, s string, required bool) error {
	if s == "" {
		if required {
			return invalid(field, "required: an http:// or https:// URL")
		}
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return invalid(field, "an http:// or https:// URL")
	}
	if u.User != nil {
		// Credentials in a URL would be shown by the API and logged.
		return invalid(field, "no credentials in the URL; put them in secret")
	}
	if u.Fragment != "" {
		return invalid(field, "no #fragment")
	}
	return nil
}

func checkHostPort(field, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return invalid(field, "host:port, e.g. siem.example.com:6514")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return invalid(field, "a port from 1 to 65535")
	}
	return nil
}

func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return b, nil
}

func readCAFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", path, errors.Unwrap(err))
	}
	if !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return b, nil
}

// filters returns the store filter of c's type and category lists (any of
// them), or nil for every event.
func (c *Config) filters() []veritrail.Filter {
	var ranges []veritrail.KeyRange
	for _, t := range c.Filters.Types {
		r, _ := veritrail.ParseFilterValue(veritrail.FieldType, t)
		ranges = append(ranges, r)
	}
	for _, cat := range c.Filters.Categories {
		r, _ := veritrail.ParseFilterValue(veritrail.FieldType, cat+".*")
		ranges = append(ranges, r)
	}
	if len(ranges) == 0 {
		return nil
	}
	return []veritrail.Filter{{Field: veritrail.FieldType, Ranges: ranges}}
}
