import CZlib

/// CRC-32 as zip archives and PNG chunks record it (ISO-HDLC: reflected polynomial 0xEDB88320,
/// initial and final value 0xFFFFFFFF), computed by the system zlib.
public enum CRC32 {
    /// The CRC-32 of `bytes`, continuing from `crc` (the checksum of the bytes before them).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        // zlib answers its initial value, not `crc`, for a null buffer.
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return crc }
        return UInt32(truncatingIfNeeded: crc32_z(UInt(crc), base.assumingMemoryBound(to: Bytef.self), bytes.count))
    }
}

/// Raw DEFLATE streams (RFC 1951, as zip archives store them) decoded by the system zlib into
/// exactly the size the archive declares.
///
/// zlib refuses what the RFC does not allow (a reserved block type, an over-subscribed or
/// incomplete code, a distance reaching before the start of the output, a stored block whose
/// length check fails); on top of that the output can never grow past the declared size plus
/// one byte, which tells a stream holding more apart from one that ends exactly there.
enum Inflate {
    /// Why a stream could not be decoded.
    struct Failure: Error, Equatable {
        var reason: String
    }

    /// Decodes the raw DEFLATE stream `input`, which must produce exactly `outputSize` bytes and
    /// end within its last byte.
    static func decompress(_ input: UnsafeRawBufferPointer, outputSize: Int) throws(Failure) -> [UInt8] {
        precondition(outputSize >= 0, "negative output size")
        let capacity = outputSize + 1
        var produced = 0
        var failure: Failure?
        let output = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            do throws(Failure) {
                produced = try inflateAll(input, into: UnsafeMutableRawBufferPointer(buffer))
                initialized = min(produced, outputSize)
            } catch {
                failure = error
            }
        }
        if let failure { throw failure }
        guard produced == outputSize else {
            throw produced > outputSize
                ? Failure(reason: "the stream holds more than the declared \(outputSize) bytes")
                : Failure(reason: "the stream holds \(produced) bytes, the archive declares \(outputSize)")
        }
        return output
    }

    /// Inflates all of `input` into `output` and returns the bytes written; `input` must end
    /// with the stream.
    private static func inflateAll(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(Failure) -> Int {
        guard let outputBase = output.baseAddress?.assumingMemoryBound(to: Bytef.self) else {
            preconditionFailure("inflate needs room for at least one byte")
        }
        var stream = z_stream()
        let started = inflateInit2_(&stream, -MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard started == Z_OK else { throw Failure(reason: "zlib cannot start inflating (status \(started))") }
        defer { inflateEnd(&stream) }

        // zlib counts in 32-bit pieces; larger buffers are handed over one piece at a time.
        let piece = Int(UInt32.max)
        var inputGiven = 0
        var outputGiven = 0
        while true {
            if stream.avail_in == 0, inputGiven < input.count, let inputBase = input.baseAddress {
                let count = min(input.count - inputGiven, piece)
                stream.next_in = UnsafeMutablePointer(mutating: inputBase.advanced(by: inputGiven).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = UInt32(count)
                inputGiven += count
            }
            if stream.avail_out == 0, outputGiven < output.count {
                let count = min(output.count - outputGiven, piece)
                stream.next_out = outputBase.advanced(by: outputGiven)
                stream.avail_out = UInt32(count)
                outputGiven += count
            }
            let status = CZlib.inflate(&stream, Z_NO_FLUSH)
            switch status {
            case Z_OK:
                continue
            case Z_STREAM_END:
                let trailing = input.count - inputGiven + Int(stream.avail_in)
                guard trailing == 0 else { throw Failure(reason: "\(trailing) bytes follow the end of the stream") }
                return outputGiven - Int(stream.avail_out)
            case Z_BUF_ERROR:
                // No progress: the output (declared size plus one) is full, or the input is used up.
                if stream.avail_out == 0 { return outputGiven }
                throw Failure(reason: "the stream ends early")
            case Z_DATA_ERROR:
                throw Failure(reason: stream.msg.map { String(cString: $0) } ?? "invalid DEFLATE data")
            case Z_MEM_ERROR:
                throw Failure(reason: "zlib ran out of memory")
            default:
                throw Failure(reason: "zlib failed with status \(status)")
            }
        }
    }
}
