package sessiond

import (
	"strings"

	"github.com/mileusna/useragent"
)

// maxUserAgentLen bounds what a session keeps of a User-Agent header.
const maxUserAgentLen = 512

// ParseDevice describes the client behind a User-Agent header: browser and
// operating system family ("Firefox", "Windows"), empty where unknown.
//
// The names are sessiond's own, stored with sessions and audit events and
// compared later (hijack signals, new-device notices), so they must not
// drift when the parser underneath changes: the parser's answer is mapped
// onto the fixed vocabulary of browserFamily and osFamily, and anything
// else (command-line tools, libraries, crawlers) is left empty. The parser
// scans the header without tables held in memory: a large resident parse
// tree would be scanned by every garbage collection, which the who-am-I
// path pays for on every request.
func ParseDevice(userAgent string) Device {
	userAgent = strings.ToValidUTF8(userAgent, "")
	if len(userAgent) > maxUserAgentLen {
		userAgent = userAgent[:maxUserAgentLen]
	}
	d := Device{UserAgent: userAgent}
	if userAgent == "" {
		return d
	}
	ua := useragent.Parse(userAgent)
	d.Browser = browserFamily[ua.Name]
	d.OS = osFamily[ua.OS]
	return d
}

// browserFamily maps the parser's browser names to sessiond's.
var browserFamily = map[string]string{
	useragent.Chrome:           "Chrome",
	useragent.HeadlessChrome:   "Chrome",
	useragent.Firefox:          "Firefox",
	useragent.Safari:           "Safari",
	useragent.MobileSafari:     "Safari",
	useragent.Edge:             "Edge",
	useragent.Opera:            "Opera",
	useragent.OperaMini:        "Opera",
	useragent.OperaTouch:       "Opera",
	useragent.Vivaldi:          "Vivaldi",
	useragent.SamsungBrowser:   "Samsung Browser",
	useragent.InternetExplorer: "IE",
	useragent.Msie:             "IE",
	"Trident":                  "IE",
}

// osFamily maps the parser's operating system names to sessiond's.
var osFamily = map[string]string{
	useragent.Windows:        "Windows",
	useragent.WindowsNT:      "Windows",
	useragent.WindowsPhone:   "Windows",
	useragent.WindowsPhoneOS: "Windows",
	useragent.MacOS:          "MacOS",
	useragent.IOS:            "iOS",
	useragent.Android:        "Android",
	useragent.Linux:          "Linux",
	useragent.FreeBSD:        "FreeBSD",
	useragent.ChromeOS:       "ChromeOS",
	useragent.CrOS:           "ChromeOS",
}
