// Package nmmetered reads whether NetworkManager considers a network
// device metered, over D-Bus, for links configured with metered = "auto".
//
// NetworkManager exports each device at an object path that
// org.freedesktop.NetworkManager.GetDeviceByIpIface returns for an
// interface name; the device's org.freedesktop.NetworkManager.Device.Metered
// property is an NMMetered value (Value): unknown, yes or no as the user
// set them, or guess-yes and guess-no as NetworkManager guessed (a mobile
// broadband modem, a phone's hotspot announcing ANDROID_METERED). Yes and
// guess-yes mean metered.
//
// When NetworkManager does not run (no system bus, or nobody owns its
// name), or does not manage the device, a link is unmetered; Reader.Metered
// says which and logs when NetworkManager appears or goes away. Calls
// carry NO_AUTO_START, so asking never starts NetworkManager.
package nmmetered
