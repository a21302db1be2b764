package pipeline_test

import (
	"fmt"

	"github.com/dionysia/dionysia/pkg/job"
	"github.com/dionysia/dionysia/workers/internal/pipeline"
)

func ExampleAuthURL() {
	for _, src := range []job.Source{
		{URL: "rtmp://edge:1935/live/KEY", User: "worker", Password: "s3cret"},
		{URL: "srt://edge:8890?streamid=read:live/KEY", User: "worker", Password: "s3cret"},
	} {
		u, err := pipeline.AuthURL(src)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(src, "→", u)
	}
	// Output:
	// rtmp://edge:1935/<redacted> → rtmp://edge:1935/live/KEY?pass=s3cret&user=worker
	// srt://edge:8890/<redacted> → srt://edge:8890?streamid=read%3Alive%2FKEY%3Aworker%3As3cret
}
