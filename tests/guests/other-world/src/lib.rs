//! A component of a world that is not `gateway:plugin/plugin`.

wit_bindgen::generate!({
    inline: "package test:other; world other { export hello: func(name: string) -> string; }",
    world: "other",
});

struct Other;

impl Guest for Other {
    fn hello(name: String) -> String {
        format!("hello {name}")
    }
}

export!(Other);
