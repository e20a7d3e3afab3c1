# A stand-in for systemd's notification socket (sd_notify(3)), for tests: receives datagrams on the path given,
# closes any file descriptors passed with them (which releases systemd-notify's barrier), and prints each
# message on one line, fields separated by " | ".
import array
import os
import socket
import sys

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    msg, anc, _flags, _addr = s.recvmsg(4096, socket.CMSG_SPACE(64 * 4))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            for fd in fds:
                os.close(fd)
    print(msg.decode().replace("\n", " | "), flush=True)
