// tokenize / detokenize subcommands.
#include <fstream>
#include <iostream>
#include <sstream>

#include "nlohmann/json.hpp"
#include "src/cli/args.h"
#include "src/cli/commands.h"
#include "src/core/status_macros.h"
#include "src/tokenizer/tokenizer.h"

namespace dsinfer::cli {

absl::Status RunTokenize(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args, Args::Parse(argc, argv, 2, {"tokenizer", "text", "text-file"}, {}));
  ASSIGN_OR_RETURN(std::string path, args.Required("tokenizer"));
  std::string text;
  if (auto t = args.Get("text")) {
    text = *t;
  } else if (auto f = args.Get("text-file")) {
    std::ifstream in(*f, std::ios::binary);
    if (!in) return absl::NotFoundError("cannot read --text-file " + *f);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  } else {
    return absl::InvalidArgumentError("one of --text or --text-file is required");
  }
  ASSIGN_OR_RETURN(auto tok, Tokenizer::FromFile(path));
  nlohmann::json out = {{"ids", tok->Encode(text)}};
  std::cout << out.dump() << "\n";
  return absl::OkStatus();
}

absl::Status RunDetokenize(int argc, char** argv) {
  ASSIGN_OR_RETURN(Args args, Args::Parse(argc, argv, 2, {"tokenizer", "ids"}, {"skip-special"}));
  ASSIGN_OR_RETURN(std::string path, args.Required("tokenizer"));
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, args.Ids("ids"));
  ASSIGN_OR_RETURN(auto tok, Tokenizer::FromFile(path));
  ASSIGN_OR_RETURN(std::string text, tok->Decode(ids, args.Has("skip-special")));
  nlohmann::json out = {{"text", text}};
  std::cout << out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  return absl::OkStatus();
}

}  // namespace dsinfer::cli
