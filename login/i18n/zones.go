package i18n

import (
	"slices"
	"time"
)

// TimeZones are the IANA time zones the account pages offer (one or two
// per region and offset, the ones people look for; "" is UTC). Their
// data comes with the binary (cmd imports time/tzdata), so they load on
// any system.
var timeZones = []string{
	"Pacific/Honolulu", "America/Anchorage", "America/Los_Angeles", "America/Vancouver", "America/Tijuana",
	"America/Denver", "America/Phoenix", "America/Edmonton", "America/Chicago", "America/Mexico_City",
	"America/Winnipeg", "America/New_York", "America/Toronto", "America/Bogota", "America/Lima",
	"America/Caracas", "America/Halifax", "America/Santiago", "America/St_Johns", "America/Sao_Paulo",
	"America/Argentina/Buenos_Aires", "Atlantic/Azores", "Atlantic/Reykjavik", "Europe/Lisbon", "Europe/London",
	"Europe/Dublin", "Africa/Casablanca", "Africa/Lagos", "Europe/Madrid", "Europe/Paris", "Europe/Brussels",
	"Europe/Amsterdam", "Europe/Berlin", "Europe/Zurich", "Europe/Vienna", "Europe/Rome", "Europe/Stockholm",
	"Europe/Oslo", "Europe/Copenhagen", "Europe/Warsaw", "Europe/Prague", "Europe/Budapest", "Africa/Johannesburg",
	"Africa/Cairo", "Europe/Athens", "Europe/Bucharest", "Europe/Helsinki", "Europe/Kyiv", "Asia/Jerusalem",
	"Europe/Istanbul", "Europe/Moscow", "Asia/Riyadh", "Africa/Nairobi", "Asia/Tehran", "Asia/Dubai",
	"Asia/Karachi", "Asia/Tashkent", "Asia/Kolkata", "Asia/Kathmandu", "Asia/Dhaka", "Asia/Yangon",
	"Asia/Bangkok", "Asia/Jakarta", "Asia/Ho_Chi_Minh", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei",
	"Asia/Singapore", "Asia/Manila", "Australia/Perth", "Asia/Seoul", "Asia/Tokyo", "Australia/Adelaide",
	"Australia/Darwin", "Australia/Brisbane", "Australia/Sydney", "Australia/Melbourne", "Pacific/Guam",
	"Pacific/Noumea", "Pacific/Auckland", "Pacific/Fiji",
}

// TimeZones are the zones a user can choose for mails and the account
// pages (besides UTC, the default).
func TimeZones() []string { return slices.Clone(timeZones) }

// Location is the location of a user's time zone: zone "" or a zone not
// offered is UTC.
func Location(zone string) *time.Location {
	if zone == "" || !slices.Contains(timeZones, zone) {
		return time.UTC
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return time.UTC
	}
	return loc
}
