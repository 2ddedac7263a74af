import Testing
@testable import Hypervisor

/// The API's JSON reader: what a client may send, and what it may not.
@Suite("JSON reader")
struct JSONReaderTests {
    func parse(_ text: String) throws -> JSONValue { try JSONReader.parse(Array(text.utf8)) }

    @Test("values, nesting, escapes and whitespace as RFC 8259 writes them")
    func values() throws {
        let value = try parse(#" { "a" : [1, -2, 3.5, 1e3, 2.0, true, false, null], "b": {"c": "x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"}, "d": [] , "e": {} } "#)
        #expect(value == .object([
            "a": .array([.integer(1), .integer(-2), .number(3.5), .integer(1000), .integer(2), .bool(true), .bool(false), .null]),
            "b": .object(["c": .string("x\"\\/\u{8}\u{c}\n\r\té😀")]),
            "d": .array([]), "e": .object([:]),
        ]))
        #expect(try parse("\"é\"") == .string("é"), "UTF-8 passes through")
        #expect(try parse("9223372036854775807") == .integer(.max))
        #expect(try parse("18446744073709551615") == .string("18446744073709551615"), "above Int64: kept as text for the option parser to name")
        #expect(try parse("-9223372036854775809") == .number(-9223372036854775809.0))
        #expect(try parse(#"{"k": 1, "k": 2}"#) == .object(["k": .integer(2)]), "a repeated key: the last counts")
    }

    @Test("what is not JSON is refused, with where it stopped", arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "{a:1}", "[1 2]", "01", "-", "1.", ".5", "1e", "+1", "tru", "nul",
        "\"abc", "\"\\x\"", "\"\\u12\"", "\"\\u+123\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
        "\"a\u{01}b\"", "\"\n\"", "[1] [2]", "{} x", "// c\n1", "1e999", "NaN", "Infinity",
    ])
    func refused(text: String) {
        #expect(throws: JSONReader.Error.self) { try parse(text) }
    }

    @Test("bytes that are not UTF-8 in a string are refused")
    func notUTF8() {
        #expect(throws: JSONReader.Error.self) { try JSONReader.parse([0x22, 0xff, 0xfe, 0x22]) }
        #expect(throws: JSONReader.Error.self) { try JSONReader.parse([0x22, 0xed, 0xa0, 0x80, 0x22]) }  // an encoded surrogate
    }

    @Test("nesting is bounded: a hostile body cannot run the API thread out of stack")
    func depth() throws {
        let deep = JSONReader.maximumDepth
        _ = try parse(String(repeating: "[", count: deep) + String(repeating: "]", count: deep))
        let error = #expect(throws: JSONReader.Error.self) {
            try parse(String(repeating: "[", count: deep + 1) + String(repeating: "]", count: deep + 1))
        }
        #expect(error?.reason == "nested deeper than \(deep)")
        #expect(throws: JSONReader.Error.self) { try parse(String(repeating: "{\"a\":", count: 100_000)) }
    }

    @Test("an error says where: the byte offset and what was wrong")
    func errorText() {
        let error = #expect(throws: JSONReader.Error.self) { try parse("{\"a\": tru}") }
        #expect(error?.description == "not JSON at byte 9: expected true")
    }

    @Test("what the VMM writes, it reads back")
    func roundTrip() throws {
        let value = JSONValue.object(["path": .string("/tmp/\u{1}é😀\"\\"), "n": .integer(-5), "x": .number(0.25),
                                      "list": .array([.bool(true), .object(["k": .string("")])])])
        #expect(try JSONReader.parse(value.serialized) == value)
    }
}
