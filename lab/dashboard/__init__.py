"""A live web page of the lab (or of every workshop seat): members, VIPs, haproxy, writes, the running drill."""
