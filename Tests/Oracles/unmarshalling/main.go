// The seed's unmarshalling function as an oracle: for each input on stdin (a 4-byte
// big-endian length, then the bytes), prints one line: base64 of fmt.Sprintf("%+v", reading)
// and base64 of the error text (empty when none), separated by a space.
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

type SensorReading struct {
	Name     string `json:"name"`
	Capacity int    `json:"capacity"`
	Time     string `json:"time"`
}

func main() {
	in := bufio.NewReader(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for {
		var size uint32
		if err := binary.Read(in, binary.BigEndian, &size); err != nil {
			return
		}
		input := make([]byte, size)
		if _, err := io.ReadFull(in, input); err != nil {
			panic(err)
		}
		var reading SensorReading
		errorText := ""
		if err := json.Unmarshal(input, &reading); err != nil {
			errorText = err.Error()
		}
		reply := fmt.Sprintf("%+v", reading)
		fmt.Fprintf(out, "%s %s\n", base64.StdEncoding.EncodeToString([]byte(reply)),
			base64.StdEncoding.EncodeToString([]byte(errorText)))
	}
}
