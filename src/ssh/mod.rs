//! SSH as the consumers speak it: their known_hosts (`known_hosts`), the server's offer
//! before key exchange (`kexinit`), and git's read-only exchange on russh (`client`).

pub mod client;
pub mod kexinit;
pub mod known_hosts;
