package s3

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"

	"github.com/parquet-go/parquet-go"

	"github.com/veritrail/veritrail/sink"
)

// OCSF records in Parquet. The records are the OCSF JSON every other sink
// sends (sink.AppendOCSF); each is written as a row of its class's schema,
// member for member, so a Parquet reader and a JSON consumer see the same
// record. The schema of a class holds the members the sink gives records
// of that class and nothing else: Security Lake takes one class per custom
// source, and its tables are the class's columns. unmapped is a
// map<string,string> as in Security Lake's own tables; a value that is not
// a string (the content) is its JSON text.

// ocsfRow is an OCSF record as the sink writes it (sink.AppendOCSF): the
// union of every class's members. Decoding a record into it refuses a
// member it lacks, so a member added to the encoder and not here fails
// the tests instead of vanishing from the Parquet.
type ocsfRow struct {
	ActivityID   int32  `json:"activity_id" parquet:"activity_id"`
	ActivityName string `json:"activity_name" parquet:"activity_name"`
	CategoryUID  int32  `json:"category_uid" parquet:"category_uid"`
	CategoryName string `json:"category_name" parquet:"category_name"`
	ClassUID     int32  `json:"class_uid" parquet:"class_uid"`
	ClassName    string `json:"class_name" parquet:"class_name"`
	TypeUID      int64  `json:"type_uid" parquet:"type_uid"`
	TypeName     string `json:"type_name" parquet:"type_name"`
	SeverityID   int32  `json:"severity_id" parquet:"severity_id"`
	Severity     string `json:"severity" parquet:"severity"`
	StatusID     int32  `json:"status_id" parquet:"status_id"`
	Status       string `json:"status" parquet:"status"`
	StatusCode   string `json:"status_code" parquet:"status_code,optional"`
	StatusDetail string `json:"status_detail" parquet:"status_detail,optional"`
	Time         int64  `json:"time" parquet:"time"`
	Duration     *int64 `json:"duration" parquet:"duration,optional"`
	Message      string `json:"message" parquet:"message"`

	Metadata struct {
		Version        string `json:"version" parquet:"version"`
		UID            string `json:"uid" parquet:"uid"`
		Sequence       int64  `json:"sequence" parquet:"sequence"`
		EventCode      string `json:"event_code" parquet:"event_code"`
		OriginalTime   string `json:"original_time" parquet:"original_time"`
		LoggedTime     int64  `json:"logged_time" parquet:"logged_time"`
		TenantUID      string `json:"tenant_uid" parquet:"tenant_uid"`
		CorrelationUID string `json:"correlation_uid" parquet:"correlation_uid,optional"`
		Product        struct {
			Name       string `json:"name" parquet:"name"`
			VendorName string `json:"vendor_name" parquet:"vendor_name"`
		} `json:"product" parquet:"product"`
		Profiles []string `json:"profiles" parquet:"profiles,optional,list"`
	} `json:"metadata" parquet:"metadata"`
	Actor struct {
		User           *ocsfUser `json:"user" parquet:"user,optional"`
		Session        *ocsfUID  `json:"session" parquet:"session,optional"`
		AppName        string    `json:"app_name" parquet:"app_name,optional"`
		Authorizations []struct {
			Decision string `json:"decision" parquet:"decision"`
			Policy   *struct {
				Name string `json:"name" parquet:"name,optional"`
				Desc string `json:"desc" parquet:"desc,optional"`
			} `json:"policy" parquet:"policy,optional"`
		} `json:"authorizations" parquet:"authorizations,optional,list"`
	} `json:"actor" parquet:"actor"`
	User        *ocsfUser `json:"user" parquet:"user,optional"`
	SrcEndpoint struct {
		IP string `json:"ip" parquet:"ip,optional"`
	} `json:"src_endpoint" parquet:"src_endpoint"`
	HTTPRequest *struct {
		UserAgent string `json:"user_agent" parquet:"user_agent,optional"`
		UID       string `json:"uid" parquet:"uid,optional"`
	} `json:"http_request" parquet:"http_request,optional"`
	API *struct {
		Operation string `json:"operation" parquet:"operation"`
		Service   *struct {
			Name string `json:"name" parquet:"name"`
		} `json:"service" parquet:"service,optional"`
		Request *ocsfUID `json:"request" parquet:"request,optional"`
	} `json:"api" parquet:"api,optional"`
	Resources []ocsfResource `json:"resources" parquet:"resources,optional,list"`
	Entity    *ocsfResource  `json:"entity" parquet:"entity,optional"`
	Group     *ocsfResource  `json:"group" parquet:"group,optional"`

	ActionID      int32  `json:"action_id" parquet:"action_id,optional"`
	Action        string `json:"action" parquet:"action,optional"`
	DispositionID int32  `json:"disposition_id" parquet:"disposition_id,optional"`
	Disposition   string `json:"disposition" parquet:"disposition,optional"`

	// Decoded on its own (raw), see decodeOCSF.
	Unmapped map[string]string `json:"-" parquet:"unmapped"`
}

type ocsfUser struct {
	UID       string `json:"uid" parquet:"uid,optional"`
	EmailAddr string `json:"email_addr" parquet:"email_addr,optional"`
	Name      string `json:"name" parquet:"name,optional"`
	Type      string `json:"type" parquet:"type,optional"`
	TypeID    int32  `json:"type_id" parquet:"type_id,optional"`
}

type ocsfUID struct {
	UID string `json:"uid" parquet:"uid"`
}

type ocsfResource struct {
	UID  string `json:"uid" parquet:"uid,optional"`
	Type string `json:"type" parquet:"type,optional"`
	Name string `json:"name" parquet:"name,optional"`
}

// classOnly are the members only some classes have; every class has the
// others.
var classOnly = map[string][]int{
	"user":      {3001, 3002, 3005},
	"entity":    {3004},
	"group":     {3006},
	"api":       {6003},
	"resources": {6003},
}

var schemas = map[int]*parquet.Schema{}

func init() {
	all := parquet.SchemaOf(new(ocsfRow))
	for _, class := range sink.OCSFClasses {
		g := parquet.Group{}
		for _, f := range all.Fields() {
			if in, ok := classOnly[f.Name()]; !ok || slices.Contains(in, class) {
				g[f.Name()] = f
			}
		}
		schemas[class] = parquet.NewSchema("ocsf_"+strconv.Itoa(class), g)
	}
}

// Schema is the Parquet schema of OCSF class uid's records (nil for a
// class the sink does not produce).
func Schema(class int) *parquet.Schema { return schemas[class] }

// decodeOCSF decodes an OCSF JSON record into its row.
func decodeOCSF(body []byte) (*ocsfRow, error) {
	var r ocsfRow
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var raw struct {
		ocsfRow
		Unmapped map[string]json.RawMessage `json:"unmapped"`
	}
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("OCSF record: %w", err)
	}
	r = raw.ocsfRow
	if schemas[int(r.ClassUID)] == nil {
		return nil, fmt.Errorf("OCSF record of unknown class %d", r.ClassUID)
	}
	// unmapped keeps its members' bytes: the content is spliced in as
	// stored and stays byte for byte.
	r.Unmapped = make(map[string]string, len(raw.Unmapped))
	for k, m := range raw.Unmapped {
		var s string
		if json.Unmarshal(m, &s) == nil {
			r.Unmapped[k] = s
		} else {
			r.Unmapped[k] = string(m)
		}
	}
	return &r, nil
}

// appendParquet writes rows (of one class) as a Parquet file. The same
// rows make the same bytes: map entries, which Go iterates in no fixed
// order, are written sorted by key.
func appendParquet(w *bytes.Buffer, class int, rows []*ocsfRow) error {
	schema := schemas[class]
	key, _ := schema.Lookup("unmapped", "key_value", "key")
	value, _ := schema.Lookup("unmapped", "key_value", "value")
	pw := parquet.NewWriter(w, schema, parquet.Compression(&parquet.Zstd),
		parquet.CreatedBy("veritrail", sink.OCSFVersion, ""))
	for _, r := range rows {
		row := schema.Deconstruct(nil, r)
		sortMapEntries(row, key.ColumnIndex, value.ColumnIndex)
		if _, err := pw.WriteRows([]parquet.Row{row}); err != nil {
			return err
		}
	}
	return pw.Close()
}

// sortMapEntries reorders a row's map entries (key and value columns) by
// key, keeping each position's repetition and definition levels.
func sortMapEntries(row parquet.Row, keyCol, valueCol int) {
	var ki, vi []int
	for i, v := range row {
		switch v.Column() {
		case keyCol:
			ki = append(ki, i)
		case valueCol:
			vi = append(vi, i)
		}
	}
	if len(ki) != len(vi) || len(ki) < 2 {
		return
	}
	type entry struct{ k, v parquet.Value }
	entries := make([]entry, len(ki))
	for n := range ki {
		entries[n] = entry{row[ki[n]], row[vi[n]]}
	}
	sort.Slice(entries, func(a, b int) bool { return bytes.Compare(entries[a].k.ByteArray(), entries[b].k.ByteArray()) < 0 })
	levels := func(at parquet.Value, v parquet.Value) parquet.Value {
		return v.Level(at.RepetitionLevel(), at.DefinitionLevel(), at.Column())
	}
	for n := range ki {
		row[ki[n]], row[vi[n]] = levels(row[ki[n]], entries[n].k), levels(row[vi[n]], entries[n].v)
	}
}
