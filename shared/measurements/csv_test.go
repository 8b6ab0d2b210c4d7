package measurements

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/iot-center/iot-center-serverless/shared/influx"
)

// Annotated CSV as InfluxDB writes it: the result name only in #default, a second table block with another
// schema, rows out of time order across blocks, an empty cell (null).
const twoBlocks = "#datatype,string,long,dateTime:RFC3339,double,double\r\n" +
	"#group,false,false,false,false,false\r\n" +
	"#default,_result,,,,\r\n" +
	",result,table,_time,CO2,Temperature\r\n" +
	",,0,2026-01-01T00:02:00Z,402,20.5\r\n" +
	",,0,2026-01-01T00:03:00Z,,21\r\n" +
	"\r\n" +
	"#datatype,string,long,dateTime:RFC3339,double\r\n" +
	"#group,false,false,false,false\r\n" +
	"#default,_result,,,\r\n" +
	",result,table,_time,Temperature\r\n" +
	",,1,2026-01-01T00:01:00.5Z,19.25\r\n"

func TestReadTable(t *testing.T) {
	tb, err := readTable(strings.NewReader(twoBlocks), []Field{Temperature, CO2, Pressure})
	if err != nil {
		t.Fatal(err)
	}
	wantTimes := []string{"2026-01-01T00:01:00.5Z", "2026-01-01T00:02:00Z", "2026-01-01T00:03:00Z"}
	wantVals := [][]float64{{19.25, 20.5, 21}, {math.NaN(), 402, math.NaN()}, {math.NaN(), math.NaN(), math.NaN()}}
	if len(tb.Times) != 3 {
		t.Fatalf("rows = %d, want 3", len(tb.Times))
	}
	for i, ts := range tb.Times {
		if got := ts.Format(time.RFC3339Nano); got != wantTimes[i] {
			t.Errorf("time[%d] = %s, want %s", i, got, wantTimes[i])
		}
		for f := range wantVals {
			g, w := tb.Values[f][i], wantVals[f][i]
			if !(g == w || math.IsNaN(g) && math.IsNaN(w)) {
				t.Errorf("%s[%d] = %v, want %v", tb.Fields[f], i, g, w)
			}
		}
	}
	js := string(renderJSON(meta{DeviceID: "d", Start: tb.Times[0], Stop: tb.Times[2], Every: "raw"}, tb))
	want := `{"deviceId":"d","start":"2026-01-01T00:01:00.5Z","stop":"2026-01-01T00:03:00Z","every":"raw","fields":["Temperature","CO2","Pressure"],` +
		`"time":["2026-01-01T00:01:00.5Z","2026-01-01T00:02:00Z","2026-01-01T00:03:00Z"],` +
		`"values":{"Temperature":[19.25,20.5,21],"CO2":[null,402,null],"Pressure":[null,null,null]}}` + "\n"
	if js != want {
		t.Errorf("JSON =\n%s\nwant\n%s", js, want)
	}
	csv := string(renderCSV(tb))
	wantCSV := "time,Temperature,CO2,Pressure\r\n2026-01-01T00:01:00.5Z,19.25,,\r\n2026-01-01T00:02:00Z,20.5,402,\r\n2026-01-01T00:03:00Z,21,,\r\n"
	if csv != wantCSV {
		t.Errorf("CSV =\n%q\nwant\n%q", csv, wantCSV)
	}
}

// TestReadErrorTable: an error InfluxDB reports inside a 200 stream is an error, not an empty result.
func TestReadErrorTable(t *testing.T) {
	body := "#datatype,string,string\r\n#group,true,true\r\n#default,,\r\n,error,reference\r\n,\"runtime error: boom\",\r\n"
	_, err := readTable(strings.NewReader(body), DefaultFields)
	if !errors.Is(err, influx.ErrQueryFailed) || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want influx.ErrQueryFailed with the message", err)
	}
	if _, err := readTable(strings.NewReader("#datatype,string\r\n,result,table,Temperature\r\n,,0,1\r\n"), DefaultFields); err == nil {
		t.Error("a table without _time was accepted")
	}
	if _, err := readTable(strings.NewReader(",result,table,_time,CO2\r\n,,0,2026-01-01T00:00:00Z,abc\r\n"), []Field{CO2}); err == nil {
		t.Error("a non-numeric value was accepted")
	}
}

func TestAppendNumber(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 1.5: "1.5", -2: "-2", 1e-7: "1e-07", 1e21: "1e+21", 123456789.25: "123456789.25", math.Inf(1): "null"} {
		if got := string(appendNumber(nil, v, "null")); got != want {
			t.Errorf("appendNumber(%v) = %s, want %s", v, got, want)
		}
	}
}
