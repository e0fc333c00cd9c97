//! Socket helpers shared by the network plugins.
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;

/// The address a listening input binds: `bind` as an IP (`[::1]` too) or a host name to resolve, and `port`.
pub fn bind_addr(bind: &str, port: u16) -> std::io::Result<SocketAddr> {
    let host = bind.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port));
    }
    (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("cannot resolve bind address {bind}")))
}

/// A TCP listener on `addr` with `SO_REUSEADDR` (so a restart can bind while old connections linger).
pub fn tcp_listener(addr: SocketAddr, backlog: u32) -> std::io::Result<tokio::net::TcpListener> {
    let sock = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    sock.set_reuseaddr(true)?;
    sock.bind(addr)?;
    sock.listen(backlog)
}

/// Reverse DNS for `ip` (blocking: call from a blocking thread). None when it has no name.
pub fn reverse_lookup(ip: IpAddr) -> Option<String> {
    let sa: SocketAddr = (ip, 0).into();
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: the sockaddr is built from a valid address and outlives the call; `host` is writable and
    // its length is passed.
    let rc = unsafe {
        match sa {
            SocketAddr::V4(v4) => {
                let mut s: libc::sockaddr_in = std::mem::zeroed();
                s.sin_family = libc::AF_INET as libc::sa_family_t;
                s.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
                libc::getnameinfo(
                    &s as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
            SocketAddr::V6(v6) => {
                let mut s: libc::sockaddr_in6 = std::mem::zeroed();
                s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
                s.sin6_addr.s6_addr = v6.ip().octets();
                libc::getnameinfo(
                    &s as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}

/// TCP keepalive probes on a connected socket (`send_keepalive_packet`).
pub fn set_keepalive(sock: &impl AsRawFd) -> std::io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid fd and a pointer to a c_int of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            &on as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn localhost_has_a_name() {
        // /etc/hosts maps 127.0.0.1 on every system this runs on.
        assert!(super::reverse_lookup("127.0.0.1".parse().unwrap()).is_some());
    }
}
