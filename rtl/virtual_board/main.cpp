// The virtual board: the generated top level (`onebit_board`) clocked by Verilator, with its
// rx byte stream fed from stdin and its tx byte stream written to stdout, the way a UART
// bridge would connect a real board to the host.
//
// The model is clocked while request bytes are waiting or a reply is being produced. When
// neither happened for IDLE_LIMIT cycles (argv[1], more than the front end's frame timeout)
// the program flushes stdout and blocks in poll() until the host writes again, so an idle
// board costs no CPU. End of stdin ends the program.
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "Vonebit_board.h"
#include "verilated.h"

// Amaranth names a stream's ports rx__valid and so on; Verilator escapes "__" as "___05F".
#define RX_VALID rx___05Fvalid
#define RX_READY rx___05Fready
#define RX_PAYLOAD rx___05Fpayload
#define TX_VALID tx___05Fvalid
#define TX_READY tx___05Fready
#define TX_PAYLOAD tx___05Fpayload

static bool write_all(const std::vector<uint8_t> &out) {
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = write(1, out.data() + done, out.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

int main(int argc, char **argv) {
    const long idle_limit = argc > 1 ? std::atol(argv[1]) : 100000;
    VerilatedContext context;
    Vonebit_board top{&context};

    top.clk = 0;
    top.rst = 1;
    for (int i = 0; i < 4; ++i) {
        top.clk = !top.clk;
        top.eval();
    }
    top.rst = 0;

    std::vector<uint8_t> in(1 << 16);
    size_t in_head = 0, in_tail = 0;
    std::vector<uint8_t> out;
    long idle = 0;
    unsigned long cycle = 0;
    bool eof = false;

    for (;;) {
        // Look for new input every 64 cycles while the model still works, since a poll()
        // per cycle would cost more than the cycle itself.
        if (in_head == in_tail && (idle >= idle_limit || (cycle & 63) == 0)) {
            in_head = in_tail = 0;
            if (eof) break;
            int wait_ms = 0;
            if (idle >= idle_limit) {
                if (!write_all(out)) return 1;
                out.clear();
                wait_ms = -1;
            }
            struct pollfd fd = {0, POLLIN, 0};
            int ready = poll(&fd, 1, wait_ms);
            if (ready < 0 && errno != EINTR) return 1;
            if (ready > 0) {
                ssize_t n = read(0, in.data(), in.size());
                if (n == 0) {
                    eof = true;
                } else if (n > 0) {
                    in_tail = static_cast<size_t>(n);
                }
            }
        }
        // Present the next request byte and take a reply byte, then one rising edge.
        top.RX_VALID = in_head < in_tail;
        top.RX_PAYLOAD = in_head < in_tail ? in[in_head] : 0;
        top.TX_READY = 1;
        top.eval();
        bool took = top.RX_VALID && top.RX_READY;
        bool gave = top.TX_VALID;
        uint8_t byte = top.TX_PAYLOAD;
        top.clk = 1;
        top.eval();
        top.clk = 0;
        top.eval();
        ++cycle;
        if (took) ++in_head;
        if (gave) out.push_back(byte);
        idle = (took || gave) ? 0 : idle + 1;
        if (out.size() >= 4096 || (gave == false && !out.empty() && idle > 2)) {
            if (!write_all(out)) return 1;
            out.clear();
        }
    }
    write_all(out);
    top.final();
    return 0;
}
