// Package s3 delivers events to S3-compatible object storage through
// github.com/aws/aws-sdk-go-v2: each batch becomes one or more objects,
// written in seq order, each followed by a manifest naming its seq range,
// record count and SHA-256.
//
// Layouts:
//
//   - hive: NDJSON.gz, one record (native or OCSF JSON) a line, under
//     <prefix>org=<org>/date=<yyyy-mm-dd>/hour=<hh>/, partitioned by the
//     event's time (UTC).
//   - security_lake: OCSF records in Parquet (zstd), one OCSF class per
//     object, under ext/<source>/region=<region>/accountId=<account>/eventDay=<yyyymmdd>/
//     as AWS Security Lake expects of a custom source (one source per
//     class: Config.LakeSource).
//
// An object is named after the seq of its first record
// (<org>-<20-digit seq>.ndjson.gz or .parquet) and its manifest is
// _<name>.manifest.json beside it (the leading underscore keeps Athena and
// Hive from reading it as data). A batch sent again after a failure or a
// restart starts at the same seq, so it overwrites its objects with the
// same or more records instead of adding copies; the manifest's range and
// digest tell a consumer which version it holds.
package s3

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/veritrail/veritrail/sink"
)

// Manifest describes one object. It is written after the object, so an
// object whose manifest is missing, or whose bytes do not hash to
// SHA256, is still being (re)written.
type Manifest struct {
	Version      int    `json:"version"` // 1
	Organization string `json:"organization"`
	Sink         string `json:"sink"`
	Object       string `json:"object"`   // the object's key
	Format       string `json:"format"`   // native or ocsf
	Encoding     string `json:"encoding"` // ndjson.gz or parquet
	OCSFClassUID int    `json:"ocsf_class_uid,omitempty"`
	// The records' seqs: FirstSeq to LastSeq, Count of them (fewer than
	// the range when the batch spread over several objects, or filters
	// passed events over).
	FirstSeq int64  `json:"first_seq"`
	LastSeq  int64  `json:"last_seq"`
	Count    int    `json:"count"`
	Bytes    int    `json:"bytes"`
	SHA256   string `json:"sha256"` // of the object's bytes, hex
	// The delivery the object belongs to.
	Batch ManifestBatch `json:"batch"`
}

// ManifestBatch is the delivery an object was written in.
type ManifestBatch struct {
	FirstSeq int64 `json:"first_seq"`
	LastSeq  int64 `json:"last_seq"`
	Objects  int   `json:"objects"`
}

// Object is one object of a batch, ready to write.
type Object struct {
	Key, ContentType string
	Body             []byte
	Manifest         Manifest
}

// ManifestKey is where the manifest of the object at key is written.
func ManifestKey(key string) string {
	dir, name := path.Split(key)
	name = strings.TrimSuffix(strings.TrimSuffix(name, ".ndjson.gz"), ".parquet")
	return dir + "_" + name + ".manifest.json"
}

type dest struct {
	client *s3.Client
	http   *http.Client
	cfg    *sink.Config
	sinkID string
}

// New is the s3 sink.Factory.
func New(s *sink.Settings) (sink.Destination, error) {
	c := s.Config
	tr, err := sink.HTTPTransport(s)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Transport: tr}
	o := s3.Options{
		Region:      c.Region,
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, string(s.Secret), ""),
		HTTPClient:  hc,
		// The engine retries with its own backoff and shows the failure.
		Retryer: aws.NopRetryer{},
		// The SHA-256 of each object is sent (x-amz-checksum-sha256) and
		// checked by the server; no trailing checksums, which not every
		// S3-compatible server reads.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if c.Endpoint != "" {
		o.BaseEndpoint = aws.String(strings.TrimSuffix(c.Endpoint, "/"))
		o.UsePathStyle = true // S3-compatible servers seldom resolve bucket host names
	}
	return &dest{client: s3.New(o), http: hc, cfg: c, sinkID: s.SinkID}, nil
}

func (d *dest) Send(ctx context.Context, b *sink.Batch) error {
	objs, err := Objects(d.cfg, b)
	if err != nil {
		return sink.Permanent(err)
	}
	for i := range objs {
		o := &objs[i]
		o.Manifest.Sink = d.sinkID
		if err := d.put(ctx, o.Key, o.ContentType, o.Body); err != nil {
			return err
		}
		m, _ := json.Marshal(o.Manifest)
		if err := d.put(ctx, ManifestKey(o.Key), "application/json", append(m, '\n')); err != nil {
			return err
		}
	}
	return nil
}

func (d *dest) put(ctx context.Context, key, contentType string, body []byte) error {
	sum := sha256.Sum256(body)
	_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(d.cfg.Bucket), Key: aws.String(key), Body: bytes.NewReader(body),
		ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(contentType),
		ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(sum[:])),
	})
	if err != nil {
		return classify(fmt.Errorf("s3 put %s: %w", key, err))
	}
	return nil
}

// classify marks refusals that retrying cannot fix (bad credentials, no
// such bucket, access denied) as permanent.
func classify(err error) error {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		st := re.HTTPStatusCode()
		if st >= 400 && st < 500 && st != http.StatusRequestTimeout && st != http.StatusTooManyRequests {
			return sink.Permanent(err)
		}
		return err
	}
	return sink.NetError(err)
}

// SavesBeforeNext: a batch sent again after a crash must start and end
// where the one that was in flight did, or its objects would not replace
// theirs.
func (*dest) SavesBeforeNext() {}

func (d *dest) Close() error {
	d.http.CloseIdleConnections()
	return nil
}

// Objects cuts b into the objects of c's layout, in seq order of their
// first records.
func Objects(c *sink.Config, b *sink.Batch) ([]Object, error) {
	if len(b.Records) == 0 {
		return nil, nil
	}
	type group struct {
		key   string
		class int
		recs  []*sink.Record
		rows  []*ocsfRow
	}
	var groups []*group
	byDir := map[string]*group{}
	for i := range b.Records {
		r := &b.Records[i]
		t := r.Event.Time.UTC()
		var dir string
		var class int
		var row *ocsfRow
		if c.Layout == sink.LayoutSecurityLake {
			var err error
			if row, err = decodeOCSF(r.Body); err != nil {
				return nil, fmt.Errorf("seq %d: %w", r.Seq, err)
			}
			class = int(row.ClassUID)
			dir = fmt.Sprintf("ext/%s/region=%s/accountId=%s/eventDay=%s/", c.LakeSource(class), c.Region, c.AccountID, t.Format("20060102"))
		} else {
			dir = fmt.Sprintf("%sorg=%s/date=%s/hour=%s/", c.Prefix, b.Org, t.Format("2006-01-02"), t.Format("15"))
		}
		g := byDir[dir]
		if g == nil {
			ext := ".ndjson.gz"
			if c.Layout == sink.LayoutSecurityLake {
				ext = ".parquet"
			}
			g = &group{key: fmt.Sprintf("%s%s-%020d%s", dir, b.Org, r.Seq, ext), class: class}
			byDir[dir] = g
			groups = append(groups, g)
		}
		g.recs = append(g.recs, r)
		if row != nil {
			g.rows = append(g.rows, row)
		}
	}
	out := make([]Object, 0, len(groups))
	for _, g := range groups {
		var buf bytes.Buffer
		o := Object{Key: g.key, Manifest: Manifest{Version: 1, Organization: b.Org, Object: g.key, Format: c.Format,
			FirstSeq: g.recs[0].Seq, LastSeq: g.recs[len(g.recs)-1].Seq, Count: len(g.recs),
			Batch: ManifestBatch{FirstSeq: b.Records[0].Seq, LastSeq: b.Records[len(b.Records)-1].Seq, Objects: len(groups)}}}
		if c.Layout == sink.LayoutSecurityLake {
			if err := appendParquet(&buf, g.class, g.rows); err != nil {
				return nil, fmt.Errorf("parquet: %w", err)
			}
			o.ContentType, o.Manifest.Encoding, o.Manifest.OCSFClassUID = "application/vnd.apache.parquet", "parquet", g.class
		} else {
			// The gzip header carries no time or name: the same records
			// make the same bytes, so a resent object is recognisably one.
			zw, _ := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
			for _, r := range g.recs {
				zw.Write(r.Body)
				zw.Write([]byte{'\n'})
			}
			if err := zw.Close(); err != nil {
				return nil, err
			}
			o.ContentType, o.Manifest.Encoding = "application/x-ndjson", "ndjson.gz"
		}
		o.Body = buf.Bytes()
		sum := sha256.Sum256(o.Body)
		o.Manifest.Bytes, o.Manifest.SHA256 = len(o.Body), hex.EncodeToString(sum[:])
		out = append(out, o)
	}
	return out, nil
}
