import Foundation
import XCTest
import FWTestSupport

// The attack suite: every known way around an egress control, tried from inside a lab
// sandbox against fwctl's firewall, watch and proxy; each attempt must be blocked, and
// nothing may reach the upstream.
